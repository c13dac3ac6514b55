#include "host/placement/placement_request.h"

#include <algorithm>

#include "host/scheduler/engine.h"

namespace novacron {
using nlohmann::json;

namespace {

constexpr size_t kMaxGroups = 16;
constexpr size_t kMaxConstraintLength = 4096;

bool valid_key(const std::string& s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

void parse_group(const json& g, const std::string& p, std::vector<std::string>& errors, scheduler::PlacementQuery& q) {
  if (!g.is_object()) {
    errors.push_back(p + ": expected an object {\"name\", \"affinity\", \"hard\", \"scope\", \"max_per_domain\"}");
    return;
  }
  for (const auto& [k, v] : g.items()) {
    if (k != "name" && k != "affinity" && k != "hard" && k != "scope" && k != "max_per_domain") {
      errors.push_back(p + "/" + k + ": unknown field (known: affinity, hard, max_per_domain, name, scope)");
    }
  }
  scheduler::GroupSpec spec;
  if (!g.contains("name") || !g["name"].is_string() || !valid_key(g["name"].get<std::string>())) {
    errors.push_back(p + "/name: expected a group name (letters, digits, '-', '_', '.', '/'; at most 63)");
  } else {
    spec.name = g["name"].get<std::string>();
  }
  const std::string affinity = g.value("affinity", std::string("anti-affinity"));
  if (affinity == "affinity") {
    spec.affinity = sdk::GroupAffinity::kAffinity;
  } else if (affinity == "anti-affinity") {
    spec.affinity = sdk::GroupAffinity::kAntiAffinity;
  } else {
    errors.push_back(p + "/affinity: expected \"affinity\" or \"anti-affinity\", got \"" + affinity + "\"");
  }
  if (g.contains("hard")) {
    if (!g["hard"].is_boolean()) {
      errors.push_back(p + "/hard: expected true or false");
    } else {
      spec.hard = g["hard"].get<bool>();
    }
  }
  if (g.contains("scope")) {
    if (!g["scope"].is_string() || !valid_key(g["scope"].get<std::string>())) {
      errors.push_back(p + "/scope: expected \"node\" or a label key (rack, zone, datacenter)");
    } else {
      spec.scope = g["scope"].get<std::string>();
    }
  }
  if (g.contains("max_per_domain")) {
    const json& m = g["max_per_domain"];
    if (!m.is_number_integer() || m.get<std::int64_t>() < 1 || m.get<std::int64_t>() > 100000) {
      errors.push_back(p + "/max_per_domain: expected an integer from 1 to 100000, got " + m.dump());
    } else {
      spec.max_per_domain = static_cast<std::uint32_t>(m.get<std::int64_t>());
    }
  }
  for (size_t i = 0; i < q.groups.size(); ++i) {
    if (!spec.name.empty() && q.groups[i].name == spec.name) {
      errors.push_back(p + "/name: group \"" + spec.name + "\" is listed twice (at /placement/groups/" +
                       std::to_string(i) + ")");
    }
  }
  q.groups.push_back(std::move(spec));
}

void parse_block(const json& body, std::vector<std::string>& errors, PlacementSpec& out) {
  auto it = body.find("placement");
  if (it == body.end()) return;
  const json& p = *it;
  if (!p.is_object()) {
    errors.push_back("/placement: expected an object {\"node\", \"groups\", \"constraints\", \"capabilities\"}");
    return;
  }
  for (const auto& [k, v] : p.items()) {
    if (k != "node" && k != "groups" && k != "constraints" && k != "capabilities" && k != "workload_class") {
      errors.push_back("/placement/" + k +
                       ": unknown field (known: capabilities, constraints, groups, node, workload_class)");
    }
  }
  if (p.contains("node")) {
    if (!p["node"].is_string() || p["node"].get<std::string>().empty()) {
      errors.push_back("/placement/node: expected a node name");
    } else {
      out.pinned_node = p["node"].get<std::string>();
    }
  }
  if (p.contains("constraints")) {
    if (!p["constraints"].is_string()) {
      errors.push_back("/placement/constraints: expected an expression (a string)");
    } else if (p["constraints"].get<std::string>().size() > kMaxConstraintLength * 4) {
      // The constraints policy counts characters (code points); this only bounds the bytes.
      errors.push_back("/placement/constraints: longer than 4096 characters");
    } else {
      out.query.constraints = p["constraints"].get<std::string>();
    }
  }
  if (p.contains("workload_class")) {
    bool known = false;
    if (p["workload_class"].is_string()) {
      for (std::uint32_t c = 0; c < sdk::kWorkloadClassCount; ++c) {
        const auto wc = static_cast<sdk::WorkloadClass>(c);
        if (p["workload_class"].get<std::string>() == sdk::workload_class_name(wc)) {
          out.query.workload_class = wc;
          known = true;
        }
      }
    }
    if (!known) {
      errors.push_back(
          "/placement/workload_class: expected one of idle, bursty, cpu-bound, memory-bound, io-bound, mixed, unknown");
    }
  }
  if (p.contains("capabilities")) {
    if (!p["capabilities"].is_array()) {
      errors.push_back("/placement/capabilities: expected an array of capability names");
    } else {
      for (size_t i = 0; i < p["capabilities"].size(); ++i) {
        const json& c = p["capabilities"][i];
        if (!c.is_string() || !valid_key(c.get<std::string>())) {
          errors.push_back("/placement/capabilities/" + std::to_string(i) + ": expected a capability name");
        } else {
          out.query.capabilities.push_back(c.get<std::string>());
        }
      }
    }
  }
  if (p.contains("groups")) {
    if (!p["groups"].is_array()) {
      errors.push_back("/placement/groups: expected an array of groups");
    } else if (p["groups"].size() > kMaxGroups) {
      errors.push_back("/placement/groups: at most 16 groups");
    } else {
      for (size_t i = 0; i < p["groups"].size(); ++i) {
        parse_group(p["groups"][i], "/placement/groups/" + std::to_string(i), errors, out.query);
      }
    }
  }
}

}  // namespace

Expected<PlacementSpec> parse_placement_spec(const json& body) {
  if (!body.is_object()) return make_error("invalid_spec", "/: expected a VM spec (a JSON object)");
  PlacementSpec out;
  std::vector<std::string> errors;
  auto& q = out.query;
  if (!body.contains("name") || !body["name"].is_string() || body["name"].get<std::string>().empty()) {
    errors.emplace_back("/name: is required (a VM name)");
  } else {
    q.name = body["name"].get<std::string>();
  }
  q.driver = body.value("driver", std::string("kvm"));
  // Required, as the VM spec requires them: a dry run must not place what a create refuses.
  const auto positive = [&](const char* key) -> std::int64_t {
    if (!body.contains(key)) {
      errors.push_back(std::string("/") + key + ": is required");
      return 0;
    }
    const json& v = body[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 1) {
      errors.push_back(std::string("/") + key + ": expected a positive integer, got " + v.dump());
      return 0;
    }
    return v.get<std::int64_t>();
  };
  q.resources[scheduler::kCpu] = positive("vcpus") * 1000;
  q.resources[scheduler::kMemory] = positive("memory_mib");
  q.resources[scheduler::kDisk] = resources_of(body)[scheduler::kDisk];
  if (auto l = body.find("labels"); l != body.end() && l->is_object()) {
    for (const auto& [k, v] : l->items()) {
      if (v.is_string()) q.labels[k] = v.get<std::string>();
    }
  }
  parse_block(body, errors, out);
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "\n") + e;
    return make_error("invalid_spec", message);
  }
  q.seed = scheduler::seed_of(q.name);
  return out;
}

std::set<std::string> group_names_of(const json& spec) {
  std::set<std::string> out;
  const auto p = spec.find("placement");
  if (p == spec.end() || !p->is_object()) return out;
  const auto g = p->find("groups");
  if (g == p->end() || !g->is_array()) return out;
  for (const auto& group : *g) {
    if (group.is_object() && group.contains("name") && group["name"].is_string()) {
      out.insert(group["name"].get<std::string>());
    }
  }
  return out;
}

scheduler::ResourceVector resources_of(const json& spec) {
  scheduler::ResourceVector r{};
  if (!spec.is_object()) return r;
  const auto int_of = [&](const char* key) {
    auto it = spec.find(key);
    return it != spec.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  r[scheduler::kCpu] = int_of("vcpus") * 1000;
  r[scheduler::kMemory] = int_of("memory_mib");
  if (auto d = spec.find("disks"); d != spec.end() && d->is_array()) {
    for (const auto& disk : *d) {
      // Disks the host creates count their size; image-backed disks are the image's (not
      // known here, so not counted).
      if (disk.is_object() && disk.contains("size_gib") && disk["size_gib"].is_number_integer()) {
        r[scheduler::kDisk] += disk["size_gib"].get<std::int64_t>();
      }
    }
  }
  return r;
}

}  // namespace novacron

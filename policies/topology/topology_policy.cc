#include "policies/topology/topology_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "novacron/sdk/json_config.hpp"

namespace novacron::policy::topology {

namespace {

using nlohmann::json;

constexpr double kNeutral = 0.5;
constexpr std::uint32_t kNoRow = std::numeric_limits<std::uint32_t>::max();
constexpr std::string_view kNodeLevel = "node";
constexpr std::array<std::string_view, kRelations> kRelationKeys = {"same_node", "same_rack", "same_datacenter",
                                                                    "between_datacenters"};

// --- Config --------------------------------------------------------------------------------

class Errors {
 public:
  void add(const std::string& where, const std::string& what) {
    if (!text_.empty()) text_ += "; ";
    text_ += where + ": " + what;
  }
  void add_all(const std::string& errors) {
    if (errors.empty()) return;
    if (!text_.empty()) text_ += "; ";
    text_ += errors;
  }
  bool ok() const { return text_.empty(); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

std::string fmt_num(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", d);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

template <size_t N>
bool one_of(std::string_view key, const std::array<std::string_view, N>& allowed) {
  return std::find(allowed.begin(), allowed.end(), key) != allowed.end();
}

template <size_t N>
void reject_unknown(const json& object, const std::string& path, const std::array<std::string_view, N>& allowed,
                    Errors& errors) {
  for (const auto& [key, value] : object.items()) {
    if (!one_of(key, allowed)) errors.add(path + "/" + key, "unknown key");
  }
}

bool expect_object(const json& v, const std::string& path, Errors& errors) {
  if (v.is_object()) return true;
  errors.add(path, std::string("expected a JSON object, got ") + v.type_name());
  return false;
}

// A number in [min, max]; `fallback` when absent or wrong (with an error).
double number_at(const json& object, std::string_view key, const std::string& path, double fallback, double min,
                 double max, Errors& errors) {
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_number() || it->get<double>() < min || it->get<double>() > max) {
    errors.add(path + "/" + std::string(key),
               "expected a number between " + fmt_num(min) + " and " + fmt_num(max) + ", got " + it->dump());
    return fallback;
  }
  return it->get<double>();
}

void parse_levels(const json& v, TopologyConfig& c, Errors& errors) {
  const std::string path = "/levels";
  if (!v.is_array() || v.empty() || v.size() > kMaxLevels) {
    errors.add(path, "expected an array of 1 to " + std::to_string(kMaxLevels) +
                         " label keys, outermost first (e.g. [\"datacenter\", \"rack\"]), got " + v.dump());
    return;
  }
  std::vector<std::string> levels;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = path + "/" + std::to_string(i);
    if (!v[i].is_string() || v[i].get<std::string>().empty()) {
      errors.add(at, "expected a label key, got " + v[i].dump());
      continue;
    }
    std::string key = v[i].get<std::string>();
    if (key == kNodeLevel) {
      errors.add(at, "\"node\" is the innermost level already; list only label keys");
      continue;
    }
    if (std::find(levels.begin(), levels.end(), key) != levels.end()) {
      errors.add(at, "\"" + key + "\" is listed twice");
      continue;
    }
    levels.push_back(std::move(key));
  }
  if (levels.size() == v.size()) c.levels = std::move(levels);
}

void parse_relations(const json& v, const std::string& path, std::array<double, kRelations>& out, double min,
                     double max, Errors& errors) {
  if (!expect_object(v, path, errors)) return;
  reject_unknown(v, path, kRelationKeys, errors);
  for (size_t r = 0; r < kRelations; ++r) out[r] = number_at(v, kRelationKeys[r], path, out[r], min, max, errors);
}

// "dc-eu-1" -> {"dc-eu-1"}; "dc-eu-1/r2" -> {"dc-eu-1", "r2"}; false on an empty part.
bool split_path(const std::string& text, std::vector<std::string>& out) {
  out.clear();
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    std::string part = text.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty()) return false;
    out.push_back(std::move(part));
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

void parse_links(const json& v, TopologyConfig& c, Errors& errors) {
  if (!v.is_array()) {
    errors.add("/links", std::string("expected an array of links, got ") + v.type_name());
    return;
  }
  constexpr std::array<std::string_view, 3> kKeys = {"between", "latency_ms", "bandwidth_mbps"};
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string path = "/links/" + std::to_string(i);
    const json& item = v[i];
    if (!expect_object(item, path, errors)) continue;
    reject_unknown(item, path, kKeys, errors);
    LinkSpec link;
    bool good = true;
    const auto between = item.find("between");
    if (between == item.end() || !between->is_array() || between->size() != 2 || !(*between)[0].is_string() ||
        !(*between)[1].is_string()) {
      errors.add(path + "/between",
                 "expected two domains, e.g. [\"dc-eu-1\", \"dc-us-1\"] or [\"dc-1/r1\", "
                 "\"dc-1/r2\"], got " +
                     (between == item.end() ? std::string("nothing") : between->dump()));
      good = false;
    } else {
      for (size_t e = 0; e < 2; ++e) {
        const std::string text = (*between)[e].get<std::string>();
        if (!split_path(text, link.between[e]) || link.between[e].size() > kMaxLevels) {
          errors.add(path + "/between/" + std::to_string(e),
                     "expected a label value or a path of values "
                     "(\"dc-1/r2\"), got \"" +
                         text + "\"");
          good = false;
        }
      }
      if (good && link.between[0] == link.between[1]) {
        errors.add(path + "/between", "a link joins two different domains, got " + between->dump());
        good = false;
      }
    }
    link.latency_ms = number_at(item, "latency_ms", path, -1, 0, 1e6, errors);
    link.bandwidth_mbps = number_at(item, "bandwidth_mbps", path, -1, 1e-3, 1e9, errors);
    if (!item.contains("latency_ms") && !item.contains("bandwidth_mbps")) {
      errors.add(path, "expected latency_ms, bandwidth_mbps or both");
      good = false;
    }
    if (good) c.links.push_back(std::move(link));
  }
}

void parse_groups(const json& v, TopologyConfig& c, Errors& errors) {
  if (!expect_object(v, "/groups", errors)) return;
  constexpr std::array<std::string_view, 3> kKeys = {"mode", "level", "within"};
  for (auto entry = v.begin(); entry != v.end(); ++entry) {
    const std::string& name = entry.key();
    const json& item = entry.value();
    const std::string path = "/groups/" + name;
    if (!expect_object(item, path, errors)) continue;
    reject_unknown(item, path, kKeys, errors);
    GroupTopology g;
    bool good = true;
    const auto mode = item.find("mode");
    if (mode != item.end() && mode->is_string() && mode->get<std::string>() == "close") {
      g.mode = GroupMode::kClose;
    } else if (mode != item.end() && mode->is_string() && mode->get<std::string>() == "spread") {
      g.mode = GroupMode::kSpread;
    } else {
      errors.add(path + "/mode", "expected \"close\" or \"spread\", got " +
                                     (mode == item.end() ? std::string("nothing") : mode->dump()));
      good = false;
    }
    const auto key_at = [&](std::string_view key, bool node_allowed, std::string& out) {
      const auto it = item.find(key);
      if (it == item.end()) return;
      const std::string at = path + "/" + std::string(key);
      if (!it->is_string()) {
        errors.add(at, "expected a label key of /levels, got " + it->dump());
        good = false;
        return;
      }
      out = it->get<std::string>();
      if ((node_allowed && out == kNodeLevel) || std::find(c.levels.begin(), c.levels.end(), out) != c.levels.end()) {
        return;
      }
      std::string list;
      for (const auto& l : c.levels) list += (list.empty() ? "\"" : ", \"") + l + "\"";
      if (node_allowed) list += ", \"node\"";
      errors.add(at, "expected one of " + list + ", got \"" + out + "\"");
      good = false;
    };
    key_at("level", /*node_allowed=*/true, g.level);
    key_at("within", /*node_allowed=*/false, g.within);
    if (good && !g.within.empty()) {
      const int level = g.level.empty() ? (g.mode == GroupMode::kClose ? static_cast<int>(c.levels.size())
                                                                       : static_cast<int>(c.levels.size()) - 1)
                                        : c.level_index(g.level);
      if (c.level_index(g.within) >= level) {
        errors.add(path + "/within", "\"" + g.within + "\" must be a level outside \"" +
                                         (g.level.empty() ? c.levels.back() : g.level) + "\"");
        good = false;
      }
    }
    if (good) c.groups.emplace(name, std::move(g));
  }
}

// --- Domains -------------------------------------------------------------------------------

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  std::uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// How one group of the request is scored in one call.
struct Plan {
  const sdk::GroupState* group = nullptr;
  GroupMode mode = GroupMode::kSpread;
  std::uint32_t level = 0;  // 0..levels (levels = the node)
  int within = -1;          // level index, -1 = none
  std::uint32_t within_row = kNoRow;
  std::uint32_t members = 0;  // in the cluster
  std::uint32_t located = 0;  // on rows of the table
  double floor_latency = 0;   // close: a relation inside `level` counts as this
  std::array<double, kMaxLevels + 1> weight{};
  std::unordered_map<std::uint64_t, std::uint32_t> counts;  // spread: domain key -> members
};

// Domain keys of `row` at levels 0..last, outermost first: a hash of the path of value ids
// (value 0, the label missing, is the one "unknown" domain inside its parent); the node level
// (levels) keys the row itself.
template <typename Fn>
void for_each_domain(const TopologyModel& m, std::uint32_t row, std::uint32_t last, Fn&& fn) {
  std::uint64_t h = 0x7f4a7c159e3779b9ULL;
  for (std::uint32_t l = 0; l <= last; ++l) {
    h = mix(h, l < m.levels() ? m.domain(l, row) : (std::uint64_t{1} << 32) | row);
    fn(l, h);
  }
}

std::uint32_t count_of(const Plan& p, std::uint64_t key) {
  const auto it = p.counts.find(key);
  return it == p.counts.end() ? 0 : it->second;
}

Plan plan_of(const sdk::GroupState& g, const TopologyConfig& config, const TopologyModel& m,
             const sdk::NodeColumns& nodes) {
  Plan p;
  p.group = &g;
  const std::uint32_t levels = m.levels();
  const auto it = config.groups.find(g.rule.name);
  const GroupTopology* t = it != config.groups.end() ? &it->second : nullptr;
  p.mode = t != nullptr ? t->mode
                        : (g.rule.affinity == sdk::GroupAffinity::kAffinity ? GroupMode::kClose : GroupMode::kSpread);
  if (t != nullptr && !t->level.empty()) {
    p.level = static_cast<std::uint32_t>(config.level_index(t->level));
  } else {
    p.level = p.mode == GroupMode::kClose ? levels : levels - 1;
  }
  if (t != nullptr && !t->within.empty()) p.within = config.level_index(t->within);

  const size_t n = std::min(g.rows.size(), g.counts.size());
  std::uint64_t listed = 0;
  for (size_t i = 0; i < n; ++i) {
    listed += g.counts[i];
    const std::uint32_t row = g.rows[i];
    if (row >= nodes.rows || g.counts[i] == 0) continue;
    p.located += g.counts[i];
    if (p.within >= 0 && p.within_row == kNoRow && m.domain(static_cast<std::uint32_t>(p.within), row) != 0) {
      p.within_row = row;
    }
    if (p.mode == GroupMode::kSpread) {
      for_each_domain(m, row, p.level, [&](std::uint32_t /*l*/, std::uint64_t key) { p.counts[key] += g.counts[i]; });
    }
  }
  p.members = static_cast<std::uint32_t>(std::max<std::uint64_t>(g.members, listed));

  if (p.mode == GroupMode::kSpread) {
    double sum = 0;
    for (std::uint32_t l = 0; l <= p.level; ++l) sum += p.weight[l] = std::ldexp(1.0, static_cast<int>(p.level - l));
    for (std::uint32_t l = 0; l <= p.level; ++l) p.weight[l] /= sum;
  } else if (p.level < levels) {
    // Inside one domain of `level`: as good as that relation.
    const std::uint32_t shared = p.level + 1;
    const Relation r = shared == levels && levels >= 2 ? Relation::kSameRack : Relation::kSameDatacenter;
    p.floor_latency = config.latency_ms[static_cast<size_t>(r)];
  }
  return p;
}

std::vector<Plan> plans_of(const sdk::PlacementQuery& query, const TopologyConfig& config, const TopologyModel& m,
                           const sdk::NodeColumns& nodes) {
  std::vector<Plan> out;
  out.reserve(query.groups.size());
  for (const sdk::GroupState& g : query.groups) out.push_back(plan_of(g, config, m, nodes));
  return out;
}

bool outside_within(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  if (p.within < 0 || p.within_row == kNoRow) return false;
  return m.shared_levels(row, p.within_row) < static_cast<std::uint32_t>(p.within) + 1;
}

// Mean latency from `row` to the located members, weighted by their counts (located > 0).
double mean_latency(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  const sdk::GroupState& g = *p.group;
  const size_t n = std::min(g.rows.size(), g.counts.size());
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::uint32_t member = g.rows[i];
    if (member >= m.rows() || g.counts[i] == 0) continue;
    double latency = 0;
    if (p.level < m.levels() && (member == row || m.shared_levels(row, member) > p.level)) {
      latency = p.floor_latency;
    } else {
      latency = m.relation(row, member).latency_ms;
    }
    sum += latency * g.counts[i];
  }
  return sum / p.located;
}

double close_score(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  if (p.located == 0) return kNeutral;
  const double worst = m.worst_latency_ms();
  if (worst <= 0) return 1.0;
  return std::clamp(1.0 - mean_latency(p, m, row) / worst, 0.0, 1.0);
}

double spread_score(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  const double denominator = static_cast<double>(p.members) + 1.0;
  double s = 0;
  for_each_domain(m, row, p.level, [&](std::uint32_t l, std::uint64_t key) {
    s += p.weight[l] * (1.0 - static_cast<double>(count_of(p, key)) / denominator);
  });
  return std::clamp(s, 0.0, 1.0);
}

double group_score(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  if (outside_within(p, m, row)) return 0.0;
  return p.mode == GroupMode::kClose ? close_score(p, m, row) : spread_score(p, m, row);
}

double mean_score(const std::vector<Plan>& plans, const TopologyModel& m, std::uint32_t row) {
  if (plans.empty()) return kNeutral;
  double sum = 0;
  for (const Plan& p : plans) sum += group_score(p, m, row);
  return sum / static_cast<double>(plans.size());
}

// --- Words ---------------------------------------------------------------------------------

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string members_text(std::uint32_t n) { return std::to_string(n) + (n == 1 ? " member" : " members"); }

std::string level_name(const TopologyModel& m, std::uint32_t level) {
  return level < m.levels() ? std::string(m.level_key(level)) : std::string(kNodeLevel);
}

std::string within_text(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  const auto w = static_cast<std::uint32_t>(p.within);
  const std::string key(m.level_key(w));
  std::string s = "outside " + key + " " + std::string(m.domain_text(w, p.within_row)) + " of the first member";
  if (m.domain(w, row) == 0) s += " (" + key + " label missing: not known to be inside)";
  return s;
}

std::string spread_text(const Plan& p, const TopologyModel& m, const sdk::NodeColumns& nodes, std::uint32_t row) {
  std::string s = "spread group " + std::string(p.group->rule.name) + " over " + level_name(m, p.level) + ": ";
  if (outside_within(p, m, row)) return s + within_text(p, m, row) + ", score 0.00";
  std::array<std::uint32_t, kMaxLevels + 1> counts{};
  for_each_domain(m, row, p.level, [&](std::uint32_t l, std::uint64_t key) { counts[l] = count_of(p, key); });
  std::string missing;
  for (std::uint32_t i = 0; i <= p.level; ++i) {
    const std::uint32_t l = p.level - i;  // innermost first
    std::string where;
    if (l == m.levels()) {
      where = std::string(nodes.names[row]);
    } else if (m.domain(l, row) == 0) {
      const std::string key(m.level_key(l));
      where = "unknown " + key;
      if (!missing.empty()) missing += "; ";
      missing += key + " label missing: counted as one unknown " + key;
    } else {
      where = std::string(m.level_key(l)) + " " + std::string(m.domain_text(l, row));
      if (i == 0) where = std::string(m.domain_text(l, row));  // the level is named already
    }
    if (i == 0) {
      s += where + " holds " + std::to_string(counts[l]) + " of " + members_text(p.members);
    } else {
      s += ", " + where + " holds " + std::to_string(counts[l]);
    }
  }
  if (!missing.empty()) s += " (" + missing + ")";
  return s + ", score " + fixed2(spread_score(p, m, row));
}

std::string close_text(const Plan& p, const TopologyModel& m, std::uint32_t row) {
  std::string s = "close to group " + std::string(p.group->rule.name);
  if (p.level < m.levels()) s += " (by " + level_name(m, p.level) + ")";
  s += ": ";
  if (outside_within(p, m, row)) return s + within_text(p, m, row) + ", score 0.00";
  if (p.located == 0) {
    return s + (p.members == 0 ? "no members yet" : "no member on a known node yet") + ", neutral (" +
           fixed2(kNeutral) + ")";
  }
  s += "mean latency " + fmt_num(mean_latency(p, m, row)) + " ms to " + members_text(p.located);
  if (p.members > p.located) s += " (" + std::to_string(p.members - p.located) + " more on unknown nodes)";
  for (std::uint32_t l = 0; l < m.levels(); ++l) {
    if (m.domain(l, row) != 0) continue;
    const std::string key(m.level_key(l));
    s += l == 0 ? " (" + key + " label missing: counted as between datacenters)"
                : " (" + key + " label missing: shares no " + key + " with the members)";
    break;
  }
  return s + ", score " + fixed2(close_score(p, m, row));
}

}  // namespace

// --- TopologyConfig ------------------------------------------------------------------------

const char* relation_name(Relation r) {
  const auto i = static_cast<size_t>(r);
  return i < kRelations ? kRelationKeys[i].data() : "unknown";
}

int TopologyConfig::level_index(std::string_view key) const {
  if (key == kNodeLevel) return static_cast<int>(levels.size());
  const auto it = std::find(levels.begin(), levels.end(), key);
  return it == levels.end() ? -1 : static_cast<int>(it - levels.begin());
}

sdk::Result<TopologyConfig> TopologyConfig::parse(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  Errors errors;
  errors.add_all(cfg.error());
  TopologyConfig c;
  const json& root = cfg.root();
  constexpr std::array<std::string_view, 5> kKeys = {"levels", "latency_ms", "bandwidth_mbps", "links", "groups"};
  reject_unknown(root, "", kKeys, errors);
  if (const auto it = root.find("levels"); it != root.end()) parse_levels(*it, c, errors);
  if (const auto it = root.find("latency_ms"); it != root.end()) {
    parse_relations(*it, "/latency_ms", c.latency_ms, 0, 1e6, errors);
  }
  if (const auto it = root.find("bandwidth_mbps"); it != root.end()) {
    parse_relations(*it, "/bandwidth_mbps", c.bandwidth_mbps, 1e-3, 1e9, errors);
  }
  if (c.latency_ms[static_cast<size_t>(Relation::kBetweenDatacenters)] <= 0) {
    errors.add("/latency_ms/between_datacenters", "must be above 0 (it is the worst latency scores compare with)");
  }
  if (const auto it = root.find("links"); it != root.end()) parse_links(*it, c, errors);
  if (const auto it = root.find("groups"); it != root.end()) parse_groups(*it, c, errors);
  if (!errors.ok()) return sdk::invalid_argument(errors.text());
  return c;
}

// --- LinkCache -----------------------------------------------------------------------------

namespace {

std::shared_ptr<const ResolvedLinks> resolve_links(const TopologyConfig& config, const sdk::NodeColumns& nodes) {
  auto out = std::make_shared<ResolvedLinks>();
  if (config.links.empty()) return out;
  std::unordered_map<std::string_view, std::uint32_t> ids;
  for (const LinkSpec& l : config.links) {
    for (const auto& path : l.between) {
      for (const std::string& part : path) ids.emplace(part, 0);
    }
  }
  for (size_t id = 1; id < nodes.label_values.size(); ++id) {
    const auto it = ids.find(nodes.label_values[id]);
    if (it != ids.end()) it->second = static_cast<std::uint32_t>(id);
  }
  for (const LinkSpec& l : config.links) {
    ResolvedLinks::Link r;
    bool known = true;
    for (size_t e = 0; e < 2; ++e) {
      for (const std::string& part : l.between[e]) {
        const std::uint32_t id = ids[part];
        known = known && id != 0;
        r.between[e].push_back(id);
      }
    }
    if (!known) continue;  // a domain no node is in: no pair of rows can use it
    r.latency_ms = l.latency_ms;
    r.bandwidth_mbps = l.bandwidth_mbps;
    out->links.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::shared_ptr<const ResolvedLinks> LinkCache::get(const TopologyConfig& config, const sdk::NodeColumns& nodes) {
  if (nodes.layout_epoch == 0) return resolve_links(config, nodes);  // not a table's columns: no cache
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (links_ != nullptr && epoch_ == nodes.layout_epoch) return links_;
  }
  auto fresh = resolve_links(config, nodes);
  const std::lock_guard<std::mutex> lock(mu_);
  epoch_ = nodes.layout_epoch;
  links_ = fresh;
  return fresh;
}

void LinkCache::clear() {
  const std::lock_guard<std::mutex> lock(mu_);
  epoch_ = 0;
  links_.reset();
}

// --- TopologyModel -------------------------------------------------------------------------

TopologyModel::TopologyModel(const TopologyConfig& config, const sdk::NodeColumns& nodes, LinkCache* cache)
    : config_(&config), nodes_(&nodes) {
  levels_ = static_cast<std::uint32_t>(std::min<size_t>(config.levels.size(), kMaxLevels));
  for (std::uint32_t l = 0; l < levels_; ++l) {
    const sdk::LabelColumn* c = nodes.label(config.levels[l]);
    columns_[l] = c != nullptr ? c->value_ids : nullptr;
  }
  worst_latency_ = config.latency_ms[static_cast<size_t>(Relation::kBetweenDatacenters)];
  if (!config.links.empty()) {
    for (const LinkSpec& l : config.links) worst_latency_ = std::max(worst_latency_, l.latency_ms);
    links_ = cache != nullptr ? cache->get(config, nodes) : resolve_links(config, nodes);
  }
}

std::uint32_t TopologyModel::shared_levels(std::uint32_t a, std::uint32_t b) const {
  for (std::uint32_t l = 0; l < levels_; ++l) {
    const std::uint32_t d = domain(l, a);
    if (d == 0 || d != domain(l, b)) return l;
  }
  return levels_;
}

Relation TopologyModel::kind_of(std::uint32_t shared) const {
  if (shared == 0) return Relation::kBetweenDatacenters;
  return shared == levels_ && levels_ >= 2 ? Relation::kSameRack : Relation::kSameDatacenter;
}

Relation TopologyModel::relation_kind(std::uint32_t a, std::uint32_t b) const {
  return a == b ? Relation::kSameNode : kind_of(shared_levels(a, b));
}

bool TopologyModel::endpoint_matches(const std::vector<std::uint32_t>& path, std::uint32_t row,
                                     std::uint32_t level) const {
  if (path.size() == 1) return domain(level, row) == path[0];
  if (path.size() != level + 1) return false;
  for (std::uint32_t l = 0; l <= level; ++l) {
    if (domain(l, row) != path[l]) return false;
  }
  return true;
}

LinkInfo TopologyModel::relation(std::uint32_t a, std::uint32_t b) const {
  LinkInfo info;
  const std::uint32_t shared = a == b ? levels_ : shared_levels(a, b);
  info.relation = a == b ? Relation::kSameNode : kind_of(shared);
  info.latency_ms = config_->latency_ms[static_cast<size_t>(info.relation)];
  info.bandwidth_mbps = config_->bandwidth_mbps[static_cast<size_t>(info.relation)];
  if (links_ == nullptr || a == b || shared >= levels_) return info;
  // The rows part at level `shared`: a link between their two domains there overrides.
  if (domain(shared, a) == 0 || domain(shared, b) == 0) return info;
  for (const ResolvedLinks::Link& l : links_->links) {
    const bool forward = endpoint_matches(l.between[0], a, shared) && endpoint_matches(l.between[1], b, shared);
    if (!forward && !(endpoint_matches(l.between[1], a, shared) && endpoint_matches(l.between[0], b, shared))) continue;
    if (l.latency_ms >= 0) info.latency_ms = l.latency_ms;
    if (l.bandwidth_mbps >= 0) info.bandwidth_mbps = l.bandwidth_mbps;
    info.link = true;
    break;
  }
  return info;
}

// --- TopologyPolicy ------------------------------------------------------------------------

std::uint32_t TopologyPolicy::applies(const sdk::PlacementQuery& query) noexcept {
  return query.groups.empty() ? 0u : static_cast<std::uint32_t>(sdk::kPolicyScores);
}

sdk::Status TopologyPolicy::on_init(std::string_view config_json) {
  auto parsed = TopologyConfig::parse(config_json);
  if (!parsed.is_ok()) return parsed.status();
  config_ = std::move(parsed).value();
  links_.clear();
  return sdk::Status::ok();
}

sdk::Status TopologyPolicy::on_check_request(const sdk::PlacementQuery& query) {
  for (size_t i = 0; i < query.groups.size(); ++i) {
    const sdk::GroupState& g = query.groups[i];
    if (g.rows.size() != g.counts.size()) {
      return sdk::invalid_argument("/placement/groups/" + std::to_string(i) + ": " + std::to_string(g.rows.size()) +
                                   " member rows but " + std::to_string(g.counts.size()) + " counts");
    }
  }
  return sdk::Status::ok();
}

sdk::Status TopologyPolicy::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                          std::span<const std::uint32_t> rows, std::span<double> out) {
  const TopologyModel model(config_, nodes, &links_);
  const std::vector<Plan> plans = plans_of(query, config_, model, nodes);
  for (size_t i = 0; i < rows.size(); ++i) out[i] = mean_score(plans, model, rows[i]);
  return sdk::Status::ok();
}

sdk::Status TopologyPolicy::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                           std::uint32_t row, sdk::FilterVerdict& verdict, sdk::NodeScore& score) {
  if (row >= nodes.rows) return sdk::invalid_argument("row " + std::to_string(row) + " is not in the node table");
  const TopologyModel model(config_, nodes, &links_);
  const std::vector<Plan> plans = plans_of(query, config_, model, nodes);
  verdict.pass = true;
  score.score = mean_score(plans, model, row);
  score.reason.clear();
  for (const Plan& p : plans) {
    if (!score.reason.empty()) score.reason += "; ";
    score.reason += p.mode == GroupMode::kClose ? close_text(p, model, row) : spread_text(p, model, nodes, row);
  }
  if (plans.size() > 1) score.reason += "; mean " + fixed2(score.score);
  if (plans.empty()) score.reason = "no groups: neutral";
  return sdk::Status::ok();
}

}  // namespace novacron::policy::topology

#include "host/vms/vm_spec.h"

#include <openssl/rand.h>

#include <set>

#include "host/common/identifiers.h"
#include "host/common/path_beneath.h"

namespace novacron {
namespace {

using nlohmann::json;

// Collects "/path: what" errors; reads typed fields and remembers unknown keys.
class SpecReader {
 public:
  void fail(const std::string& path, const std::string& what) { errors_.push_back(path + ": " + what); }
  bool ok() const { return errors_.empty(); }
  std::string message() const {
    std::string out;
    for (const auto& e : errors_) out += (out.empty() ? "" : "\n") + e;
    return out;
  }

  bool object(const json& j, const std::string& path, const std::set<std::string>& known) {
    if (!j.is_object()) {
      fail(path.empty() ? "/" : path, std::string("expected an object, got ") + j.type_name());
      return false;
    }
    for (const auto& [k, v] : j.items()) {
      if (known.count(k) == 0) {
        std::string list;
        for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
        fail(path + "/" + k, "unknown field (known: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> string(const json& j, const std::string& path, const std::string& key, bool required) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) fail(path + "/" + key, "is required");
      return std::nullopt;
    }
    if (!it->is_string() || it->get<std::string>().empty()) {
      fail(path + "/" + key, "expected a non-empty string, got " + it->dump());
      return std::nullopt;
    }
    return it->get<std::string>();
  }

  std::optional<std::int64_t> integer(const json& j, const std::string& path, const std::string& key, bool required,
                                      std::int64_t min, std::int64_t max) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) fail(path + "/" + key, "is required");
      return std::nullopt;
    }
    if (!it->is_number_integer()) {
      fail(path + "/" + key, "expected an integer, got " + it->dump());
      return std::nullopt;
    }
    // Compared as unsigned too: a huge number must not wrap into range.
    bool out_of_range = it->is_number_unsigned() ? it->get<std::uint64_t>() > static_cast<std::uint64_t>(max) ||
                                                       static_cast<std::int64_t>(it->get<std::uint64_t>()) < min
                                                 : it->get<std::int64_t>() < min || it->get<std::int64_t>() > max;
    if (out_of_range) {
      fail(path + "/" + key, "expected " + std::to_string(min) + " to " + std::to_string(max) + ", got " + it->dump());
      return std::nullopt;
    }
    return it->get<std::int64_t>();
  }

 private:
  std::vector<std::string> errors_;
};

bool is_label_key(const std::string& k) {
  if (k.empty() || k.size() > 63) return false;
  for (unsigned char c : k) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.' && c != '/') return false;
  }
  return true;
}

// A client path beneath the image root, as an absolute path; errors name `field`.
std::optional<std::string> image_path(SpecReader& r, const std::string& field, const std::string& client_path,
                                      const std::filesystem::path& root) {
  auto resolved = resolve_beneath(root, client_path);
  if (!resolved) {
    r.fail(field, "\"" + client_path + "\": " + resolved.error().message + " (paths are relative to the image root " +
                      root.string() + ")");
    return std::nullopt;
  }
  return resolved->string();
}

void parse_disks(SpecReader& r, const json& body, VmRequest& out, const std::filesystem::path& vm_dir,
                 const std::filesystem::path& image_root, const VmSpecLimits& limits) {
  auto it = body.find("disks");
  if (it == body.end()) return;
  if (!it->is_array()) return r.fail("/disks", std::string("expected an array, got ") + it->type_name());
  if (it->size() > limits.max_disks) return r.fail("/disks", "at most " + std::to_string(limits.max_disks) + " disks");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& d = (*it)[i];
    const std::string p = "/disks/" + std::to_string(i);
    if (!r.object(d, p, {"image", "size_gib", "format", "bus", "read_only"})) continue;
    sdk::DiskSpec disk;
    if (auto f = r.string(d, p, "format", false)) {
      // It names the file of a new disk: only the known formats, never a path.
      if (*f != "qcow2" && *f != "raw") r.fail(p + "/format", "expected qcow2 or raw, got \"" + *f + "\"");
      disk.format = *f;
    }
    if (auto b = r.string(d, p, "bus", false)) disk.bus = *b;
    if (auto ro = d.find("read_only"); ro != d.end()) {
      if (!ro->is_boolean()) {
        r.fail(p + "/read_only", "expected true or false, got " + ro->dump());
      } else {
        disk.read_only = ro->get<bool>();
      }
    }
    auto image = r.string(d, p, "image", false);
    auto size = r.integer(d, p, "size_gib", false, 1, limits.max_disk_gib);
    if (image && d.contains("size_gib")) {
      r.fail(p, "give either image (an existing image) or size_gib (a new empty disk), not both");
    } else if (image) {
      if (auto path = image_path(r, p + "/image", *image, image_root)) disk.path = *path;
    } else if (size) {
      disk.size_gib = *size;
      disk.path = (vm_dir / ("disk-" + std::to_string(i) + "." + disk.format)).string();
    } else if (!d.contains("size_gib")) {
      r.fail(p, "needs image (an existing image) or size_gib (a new empty disk)");
    }
    out.spec.disks.push_back(disk);
  }
}

void parse_boot(SpecReader& r, const json& body, VmRequest& out, const std::filesystem::path& image_root) {
  auto it = body.find("boot");
  if (it == body.end()) return;
  if (!r.object(*it, "/boot", {"from", "kernel", "initrd", "cmdline"})) return;
  if (auto from = r.string(*it, "/boot", "from", false)) out.spec.boot.from = *from;
  if (auto k = r.string(*it, "/boot", "kernel", false)) {
    if (auto path = image_path(r, "/boot/kernel", *k, image_root)) out.spec.boot.kernel = *path;
  }
  if (auto k = r.string(*it, "/boot", "initrd", false)) {
    if (auto path = image_path(r, "/boot/initrd", *k, image_root)) out.spec.boot.initrd = *path;
  }
  if (auto c = it->find("cmdline"); c != it->end()) {
    if (!c->is_string() || c->get<std::string>().size() > 4096) {
      r.fail("/boot/cmdline", "expected a string of at most 4096 characters");
    } else {
      out.spec.boot.cmdline = c->get<std::string>();
    }
  }
}

void parse_network(SpecReader& r, const json& body, VmRequest& out, const VmSpecLimits& limits) {
  auto it = body.find("network");
  if (it == body.end() || (it->is_string() && it->get<std::string>() == "none")) return;
  if (!it->is_array()) return r.fail("/network", std::string("expected an array or \"none\", got ") + it->dump());
  if (it->size() > limits.max_nics)
    return r.fail("/network", "at most " + std::to_string(limits.max_nics) + " interfaces");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& n = (*it)[i];
    const std::string p = "/network/" + std::to_string(i);
    if (!r.object(n, p, {"type", "bridge", "mac"})) continue;
    sdk::NicSpec nic;
    if (auto t = r.string(n, p, "type", true)) nic.type = *t;
    if (auto b = r.string(n, p, "bridge", false)) nic.bridge = *b;
    if (auto m = r.string(n, p, "mac", false)) {
      bool ok = m->size() == 17;
      for (size_t k = 0; ok && k < m->size(); ++k) {
        ok = k % 3 == 2 ? (*m)[k] == ':' : std::isxdigit(static_cast<unsigned char>((*m)[k])) != 0;
      }
      if (!ok) r.fail(p + "/mac", "expected a MAC address like 52:54:00:12:34:56, got \"" + *m + "\"");
      nic.mac = *m;
    }
    out.spec.nics.push_back(nic);
  }
}

// Environment names as a POSIX shell would accept them.
bool is_env_name(const std::string& k) {
  if (k.empty() || k.size() > 255 || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (unsigned char c : k) {
    if (!std::isalnum(c) && c != '_') return false;
  }
  return true;
}

// A string without control characters (they would break the container's config file).
bool is_printable(const std::string& v) {
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

void parse_container(SpecReader& r, const json& body, VmRequest& out, const std::filesystem::path& image_root) {
  auto it = body.find("container");
  if (it == body.end()) return;
  if (!r.object(*it, "/container", {"template", "rootfs_tarball", "env", "init"})) return;
  sdk::ContainerSpec& c = out.spec.container;
  if (auto t = r.string(*it, "/container", "template", false)) {
    // A template is a script name in LXC's template folder, never a path.
    bool ok = t->size() <= 64;
    for (unsigned char ch : *t) ok = ok && (std::isalnum(ch) || ch == '-' || ch == '_');
    if (!ok) r.fail("/container/template", "expected a template name like \"busybox\", got \"" + *t + "\"");
    c.template_name = *t;
  }
  if (auto t = r.string(*it, "/container", "rootfs_tarball", false)) {
    if (auto path = image_path(r, "/container/rootfs_tarball", *t, image_root)) c.rootfs_tarball = *path;
  }
  if (!c.template_name.empty() && it->contains("rootfs_tarball")) {
    r.fail("/container", "give either template or rootfs_tarball, not both");
  }
  if (auto env = it->find("env"); env != it->end()) {
    if (!env->is_object()) {
      r.fail("/container/env", std::string("expected an object of strings, got ") + env->type_name());
    } else {
      for (const auto& [k, v] : env->items()) {
        if (!is_env_name(k)) {
          r.fail("/container/env/" + k, "names are letters, digits and '_', not starting with a digit");
        } else if (!v.is_string() || v.get<std::string>().size() > 4096 || !is_printable(v.get<std::string>())) {
          r.fail("/container/env/" + k, "expected a string of at most 4096 printable characters");
        } else {
          c.env.emplace_back(k, v.get<std::string>());
        }
      }
      size_t total = 0;
      for (const auto& [k, v] : c.env) total += k.size() + v.size();
      if (total > 65536) r.fail("/container/env", "at most 65536 bytes in all");
    }
  }
  if (auto init = it->find("init"); init != it->end()) {
    if (!init->is_array() || init->empty() || init->size() > 256) {
      r.fail("/container/init", "expected an array of 1 to 256 strings (the command and its arguments)");
    } else {
      for (size_t i = 0; i < init->size(); ++i) {
        const json& a = (*init)[i];
        if (!a.is_string() || a.get<std::string>().size() > 4096 || (i == 0 && a.get<std::string>().empty())) {
          r.fail("/container/init/" + std::to_string(i), "expected a string of at most 4096 characters");
        } else {
          c.init.push_back(a.get<std::string>());
        }
      }
      size_t total = 0;
      for (const auto& a : c.init) total += a.size();
      if (total > 65536) r.fail("/container/init", "at most 65536 bytes in all");
      if (!c.init.empty() && c.init[0].front() != '/') {
        r.fail("/container/init/0", "expected an absolute path inside the container, got \"" + c.init[0] + "\"");
      }
    }
  }
}

}  // namespace

std::string new_uuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0xf];
  }
  return out;
}

Expected<VmRequest> parse_vm_spec(const json& body, const std::string& id, const std::filesystem::path& vm_dir,
                                  const std::filesystem::path& image_root, const VmSpecLimits& limits) {
  SpecReader r;
  VmRequest out;
  out.original = body;
  if (!r.object(body, "",
                {"name", "driver", "vcpus", "memory_mib", "disks", "boot", "network", "labels", "start", "container",
                 "driver_options", "placement"})) {
    return make_error("invalid_spec", r.message());
  }
  out.spec.id = id;
  out.spec.vm_dir = vm_dir.string();
  out.spec.console_log = (vm_dir / "console.log").string();
  if (auto name = r.string(body, "", "name", true)) {
    if (!is_valid_node_name(*name)) {
      r.fail("/name",
             "\"" + *name + "\" is not a valid name (1-63 letters, digits, '.', '-', starting with a letter or digit)");
    }
    out.spec.name = *name;
  }
  if (auto d = r.string(body, "", "driver", true)) out.driver = *d;
  if (auto v = r.integer(body, "", "vcpus", true, 1, limits.max_vcpus)) out.spec.vcpus = static_cast<int>(*v);
  if (auto m = r.integer(body, "", "memory_mib", true, 16, limits.max_memory_mib)) out.spec.memory_mib = *m;
  parse_disks(r, body, out, vm_dir, image_root, limits);
  parse_boot(r, body, out, image_root);
  parse_network(r, body, out, limits);
  parse_container(r, body, out, image_root);
  if (auto l = body.find("labels"); l != body.end()) {
    if (!l->is_object()) {
      r.fail("/labels", std::string("expected an object of strings, got ") + l->type_name());
    } else {
      for (const auto& [k, v] : l->items()) {
        if (!is_label_key(k)) {
          r.fail("/labels/" + k, "label keys are 1-63 letters, digits, '-', '_', '.', '/'");
        } else if (!v.is_string() || v.get<std::string>().size() > 255) {
          r.fail("/labels/" + k, "expected a string of at most 255 characters");
        } else {
          out.spec.labels.emplace_back(k, v.get<std::string>());
        }
      }
    }
  }
  if (auto s = body.find("start"); s != body.end()) {
    if (!s->is_boolean()) {
      r.fail("/start", "expected true or false, got " + s->dump());
    } else {
      out.start = s->get<bool>();
    }
  }
  if (auto o = body.find("driver_options"); o != body.end()) {
    if (!o->is_object()) {
      r.fail("/driver_options", std::string("expected an object, got ") + o->type_name());
    } else {
      out.spec.driver_options_json = o->dump();
    }
  }
  if (!r.ok()) return make_error("invalid_spec", r.message());
  return out;
}

}  // namespace novacron

#include "host/plugins/manifest.h"

#include <charconv>

#include <nlohmann/json.hpp>

namespace novacron {

int compare_versions(std::string_view a, std::string_view b) {
  auto parse = [](std::string_view v, long out[3]) -> std::string_view {
    for (int i = 0; i < 3; ++i) {
      out[i] = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out[i]);
      v.remove_prefix(static_cast<size_t>(ptr - v.data()));
      if (!v.empty() && v.front() == '.' && i < 2) v.remove_prefix(1);
    }
    return v;  // pre-release / build suffix
  };
  long va[3], vb[3];
  std::string_view ra = parse(a, va), rb = parse(b, vb);
  for (int i = 0; i < 3; ++i) {
    if (va[i] != vb[i]) return va[i] < vb[i] ? -1 : 1;
  }
  // A release sorts after its pre-releases: 1.0.0 > 1.0.0-rc1.
  if (ra.empty() != rb.empty()) return ra.empty() ? 1 : -1;
  return ra.compare(rb) < 0 ? -1 : (ra == rb ? 0 : 1);
}

NovacronPluginKind kind_from_name(std::string_view name) {
  if (name == "auth_provider") return NOVACRON_KIND_AUTH_PROVIDER;
  if (name == "scheduling_policy") return NOVACRON_KIND_SCHEDULING_POLICY;
  if (name == "hypervisor_driver") return NOVACRON_KIND_HYPERVISOR_DRIVER;
  if (name == "migration_transport") return NOVACRON_KIND_MIGRATION_TRANSPORT;
  if (name == "storage_backend") return NOVACRON_KIND_STORAGE_BACKEND;
  if (name == "cloud_connector") return NOVACRON_KIND_CLOUD_CONNECTOR;
  return NOVACRON_KIND_UNKNOWN;
}

const char* kind_name(std::uint32_t kind) {
  switch (kind) {
    case NOVACRON_KIND_AUTH_PROVIDER:
      return "auth_provider";
    case NOVACRON_KIND_SCHEDULING_POLICY:
      return "scheduling_policy";
    case NOVACRON_KIND_HYPERVISOR_DRIVER:
      return "hypervisor_driver";
    case NOVACRON_KIND_MIGRATION_TRANSPORT:
      return "migration_transport";
    case NOVACRON_KIND_STORAGE_BACKEND:
      return "storage_backend";
    case NOVACRON_KIND_CLOUD_CONNECTOR:
      return "cloud_connector";
    default:
      return "unknown";
  }
}

Expected<PluginManifest> parse_manifest(std::string_view text, const std::string& origin) {
  if (text.size() > kMaxManifestBytes) {
    return make_error("manifest_invalid", origin + ": manifest larger than 256 KiB");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("manifest_invalid", origin + ": not valid JSON");
  if (!j.is_object()) return make_error("manifest_invalid", origin + ": expected a JSON object");

  PluginManifest m;
  auto field = [&](const char* key, std::string& out, bool required) -> Expected<void> {
    auto it = j.find(key);
    if (it == j.end()) {
      if (!required) return {};
      return make_error("manifest_invalid", origin + ": /" + key + " is required");
    }
    if (!it->is_string()) {
      return make_error("manifest_invalid", origin + ": /" + key + ": expected a string, got " + it->dump());
    }
    out = it->get<std::string>();
    return {};
  };
  for (auto [key, out, required] : {std::tuple{"id", &m.id, true},
                                    {"version", &m.version, true},
                                    {"kind", &m.kind, true},
                                    {"sdk_version", &m.sdk_version, true},
                                    {"library", &m.library, true},
                                    {"sha256", &m.sha256, true},
                                    {"description", &m.description, false},
                                    {"license", &m.license, false}}) {
    if (auto r = field(key, *out, required); !r) return tl::unexpected(r.error());
  }
  if (!is_valid_plugin_id(m.id)) {
    return make_error("manifest_invalid", origin + ": /id: \"" + m.id + "\" is not a reverse-DNS id");
  }
  if (!is_valid_plugin_version(m.version)) {
    return make_error("manifest_invalid", origin + ": /version: \"" + m.version + "\" is not MAJOR.MINOR.PATCH");
  }
  if (kind_from_name(m.kind) == NOVACRON_KIND_UNKNOWN) {
    return make_error("manifest_invalid", origin + ": /kind: unknown plugin kind \"" + m.kind + "\"");
  }
  // The library is a plain file name next to the manifest: no paths, no hidden files.
  if (m.library.empty() || m.library.find('/') != std::string::npos || m.library.front() == '.' ||
      !m.library.ends_with(".so")) {
    return make_error("manifest_invalid",
                      origin + ": /library: \"" + m.library + "\" must be a file name ending in .so, without '/'");
  }
  if (m.sha256.size() != 64 || m.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return make_error("manifest_invalid", origin + ": /sha256: expected 64 lower-case hex digits");
  }
  if (auto keys = j.find("config_keys"); keys != j.end()) {
    if (!keys->is_array()) {
      return make_error("manifest_invalid", origin + ": /config_keys: expected an array");
    }
    m.config_keys_json = keys->dump();
  }
  return m;
}

}  // namespace novacron

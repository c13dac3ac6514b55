#include "host/plugins/descriptor_check.h"

#include <cstring>

#include "host/plugins/manifest.h"
#include "novacron/sdk/auth_provider.hpp"
#include "novacron/sdk/hypervisor_driver.hpp"
#include "novacron/sdk/migration_transport.hpp"
#include "novacron/sdk/scheduling_policy.hpp"
#include "novacron/sdk/version.hpp"

namespace novacron {
namespace {

// Bounded copy of a C string from the plugin (it may be garbage in a broken plugin).
bool copy_c_string(const char* s, std::string& out, size_t limit) {
  if (s == nullptr) return false;
  size_t n = ::strnlen(s, limit + 1);
  if (n == 0 || n > limit) return false;
  out.assign(s, n);
  return true;
}

}  // namespace

std::uint32_t host_interface_version(std::uint32_t kind) {
  switch (kind) {
    case NOVACRON_KIND_AUTH_PROVIDER:
      return sdk::AuthProvider::kInterfaceVersion;
    case NOVACRON_KIND_SCHEDULING_POLICY:
      return sdk::SchedulingPolicy::kInterfaceVersion;
    case NOVACRON_KIND_HYPERVISOR_DRIVER:
      return sdk::HypervisorDriver::kInterfaceVersion;
    case NOVACRON_KIND_MIGRATION_TRANSPORT:
      return sdk::MigrationTransport::kInterfaceVersion;
    default:
      return 0;
  }
}

Expected<DescriptorInfo> read_descriptor(const NovacronPluginDescriptor* d) {
  if (d == nullptr) return make_error("descriptor_invalid", "the entry function returned no descriptor");
  if (d->magic != NOVACRON_PLUGIN_MAGIC) {
    return make_error("descriptor_invalid", "descriptor has a wrong magic number (not a NovaCron plugin?)");
  }
  // Fields are only appended, so any descriptor at least as large as version 1's is readable.
  if (d->size < sizeof(NovacronPluginDescriptor)) {
    return make_error("descriptor_invalid",
                      "descriptor is " + std::to_string(d->size) + " bytes, smaller than the SDK 1.0 descriptor");
  }
  DescriptorInfo info;
  info.sdk_major = d->sdk_major;
  info.sdk_minor = d->sdk_minor;
  info.kind = d->kind;
  info.interface_version = d->interface_version;
  info.toolchain = d->toolchain;
  info.create = d->create;
  info.destroy = d->destroy;
  if (!copy_c_string(d->id, info.id, 128) || !is_valid_plugin_id(info.id)) {
    return make_error("descriptor_invalid", "descriptor id is missing or not a reverse-DNS id");
  }
  if (!copy_c_string(d->version, info.version, 64) || !is_valid_plugin_version(info.version)) {
    return make_error("descriptor_invalid", "descriptor version is missing or not MAJOR.MINOR.PATCH");
  }
  if (info.create == nullptr || info.destroy == nullptr) {
    return make_error("descriptor_invalid", "descriptor lacks its create or destroy function");
  }
  return info;
}

std::string describe_toolchain(const NovacronToolchain& t) {
  std::string compiler = t.compiler_family == NOVACRON_COMPILER_GCC     ? "gcc"
                         : t.compiler_family == NOVACRON_COMPILER_CLANG ? "clang"
                                                                        : "other compiler";
  std::string stdlib = t.stdlib == NOVACRON_STDLIB_LIBSTDCXX ? "libstdc++"
                       : t.stdlib == NOVACRON_STDLIB_LIBCXX  ? "libc++"
                                                             : "other stdlib";
  std::string out =
      compiler + " " + std::to_string(t.compiler_major) + ", " + stdlib + " " + std::to_string(t.stdlib_release);
  if (t.stdlib == NOVACRON_STDLIB_LIBSTDCXX) out += t.cxx11_abi != 0 ? ", cxx11 abi" : ", old (pre-cxx11) abi";
  return out;
}

Expected<void> check_compatibility(const DescriptorInfo& info, const NovacronToolchain& host) {
  if (info.sdk_major != NOVACRON_SDK_VERSION_MAJOR) {
    return make_error("sdk_major_mismatch", "built against SDK " + std::to_string(info.sdk_major) + "." +
                                                std::to_string(info.sdk_minor) + ", this host provides SDK " +
                                                NOVACRON_SDK_VERSION_STRING +
                                                "; majors must match (rebuild the plugin against SDK " +
                                                std::to_string(NOVACRON_SDK_VERSION_MAJOR) + ".x)");
  }
  if (info.sdk_minor > NOVACRON_SDK_VERSION_MINOR) {
    return make_error("sdk_minor_too_new", "built against SDK " + std::to_string(info.sdk_major) + "." +
                                               std::to_string(info.sdk_minor) + ", newer than this host's SDK " +
                                               NOVACRON_SDK_VERSION_STRING +
                                               " (upgrade the host, or build the plugin against an older SDK)");
  }
  // C++ types (std::string, std::function, vtables) cross the boundary: the standard
  // library and its ABI must match. The runtime libstdc++ is the host's, so a plugin built
  // against a newer libstdc++ may need symbols this host's runtime lacks.
  const auto& t = info.toolchain;
  if (t.stdlib != host.stdlib || (t.stdlib == NOVACRON_STDLIB_LIBSTDCXX && t.cxx11_abi != host.cxx11_abi) ||
      t.stdlib_release > host.stdlib_release) {
    return make_error("toolchain_incompatible", "built with " + describe_toolchain(t) +
                                                    ", incompatible with this host's " + describe_toolchain(host) +
                                                    " (the C++ standard library and its ABI must match)");
  }
  std::uint32_t host_version = host_interface_version(info.kind);
  if (host_version == 0) {
    return make_error("kind_unsupported", std::string("plugin kind ") + kind_name(info.kind) + " (" +
                                              std::to_string(info.kind) + ") is not supported by SDK " +
                                              NOVACRON_SDK_VERSION_STRING);
  }
  if (info.interface_version == 0) {
    return make_error("descriptor_invalid", "interface version 0 is not valid");
  }
  // Same major and an older-or-equal minor cannot define a newer interface: a descriptor that
  // claims one was not made by the SDK's macros.
  if (info.interface_version > host_version) {
    return make_error("descriptor_invalid", "claims " + std::string(kind_name(info.kind)) + " interface version " +
                                                std::to_string(info.interface_version) + ", but SDK " +
                                                NOVACRON_SDK_VERSION_STRING + " defines version " +
                                                std::to_string(host_version));
  }
  return {};
}

}  // namespace novacron

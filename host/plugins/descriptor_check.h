// Reading and judging a plugin's descriptor: the first and only thing the host looks at in
// a freshly loaded library before it uses any C++ type from it.
#pragma once

#include <cstdint>
#include <string>

#include "host/common/error.h"
#include "novacron/sdk/descriptor.hpp"

namespace novacron {

struct DescriptorInfo {
  std::uint16_t sdk_major = 0;
  std::uint16_t sdk_minor = 0;
  std::uint32_t kind = 0;
  std::uint32_t interface_version = 0;
  NovacronToolchain toolchain{};
  std::string id;
  std::string version;
  NovacronCreateFn create = nullptr;
  NovacronDestroyFn destroy = nullptr;
};

// Copies the descriptor out after checking magic, size and the strings' sanity.
// Error "descriptor_invalid".
Expected<DescriptorInfo> read_descriptor(const NovacronPluginDescriptor* descriptor);

// The compatibility rule (docs/sdk-versioning.md): same SDK major, plugin minor <= host
// minor, a kind this host knows at an interface version >= 1, and a compatible toolchain.
// Errors: "sdk_major_mismatch", "sdk_minor_too_new", "toolchain_incompatible",
// "kind_unsupported".
Expected<void> check_compatibility(const DescriptorInfo& info, const NovacronToolchain& host_toolchain);

// "gcc 12, libstdc++ 12, cxx11 abi" for messages.
std::string describe_toolchain(const NovacronToolchain& t);

// Highest interface version of `kind` this host implements (0 = kind not supported).
std::uint32_t host_interface_version(std::uint32_t kind);

}  // namespace novacron

// SDK version. Bumped by the rules in docs/sdk-versioning.md:
//   major: an interface or the descriptor changed incompatibly (plugins must be rebuilt),
//   minor: something was added (new kind, new method at the end of an interface),
//   patch: documentation and header fixes that change no type.
#pragma once

#define NOVACRON_SDK_VERSION_MAJOR 1
#define NOVACRON_SDK_VERSION_MINOR 4
#define NOVACRON_SDK_VERSION_PATCH 0
#define NOVACRON_SDK_VERSION_STRING "1.4.0"

namespace novacron::sdk {

struct SdkVersion {
  int major;
  int minor;
  int patch;
};

inline constexpr SdkVersion kSdkVersion{NOVACRON_SDK_VERSION_MAJOR, NOVACRON_SDK_VERSION_MINOR,
                                        NOVACRON_SDK_VERSION_PATCH};

}  // namespace novacron::sdk

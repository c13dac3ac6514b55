#pragma once

#include <string>

namespace novacron {

// The GNU build-id of the running executable (hex), read from its PT_NOTE segment: it changes
// whenever the executable's contents change. Empty when the linker did not write one.
// Used to tell a host upgrade (which legitimately brings new bundled plugins) from a bundled
// plugin file that changed under the same host.
const std::string& executable_build_id();

}  // namespace novacron

// libFuzzer target: host config parsing and validation (JSON with comments).
#include <cstddef>
#include <cstdint>
#include <string>

#include "host/config/host_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)novacron::parse_host_config(text, "/etc/novacron");
  return 0;
}

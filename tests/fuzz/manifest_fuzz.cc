// libFuzzer target: plugin.json parsing (manifests come from packages being installed).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "host/plugins/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)novacron::parse_manifest(text, "fuzz/plugin.json");
  (void)novacron::is_valid_plugin_version(text);
  (void)novacron::is_valid_plugin_id(text);
  return 0;
}

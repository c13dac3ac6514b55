// Inspecting a plugin library in a short-lived child process (novacron-plugin-inspect), the
// way GStreamer's plugin scanner works: loading runs the library's constructors and
// Boost.DLL's library_info trusts the file's headers, so a crashing or hostile plugin must
// only take down the child. Used for files that are not pinned yet (install, first sight of
// a bundled plugin, `novacron plugin validate`).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "host/common/error.h"
#include "host/plugins/descriptor_check.h"

namespace novacron {

struct InspectionReport {
  DescriptorInfo descriptor;  // create/destroy are null: they belong to the child
  std::vector<std::string> alias_symbols;
  std::string toolchain;  // human description
};

// Path of the helper: $NOVACRON_INSPECT_HELPER, else <exe dir>/../libexec/novacron/
// novacron-plugin-inspect.
std::filesystem::path default_inspect_helper();

// Runs the helper on `library`. A crash, hang (timeout) or refusal in the child is an Error;
// the caller keeps running. Error codes are the child's (e.g. "sdk_major_mismatch") or
// "inspection_crashed" / "inspection_failed".
Expected<InspectionReport> inspect_in_child(const std::filesystem::path& helper, const std::filesystem::path& library,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(15));

// The child's side: inspects `library` and prints one JSON object on stdout. Returns the
// process exit code (0 = descriptor read, 1 = refused, 2 = usage). Compatibility is judged
// by the parent (check_compatibility), not here.
int run_inspection(const std::string& library);

}  // namespace novacron

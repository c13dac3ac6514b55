// Checks of a plugin package (a folder with plugin.json and its library, or a bare .so) that
// is not pinned yet: used by `novacron plugin validate` (which prints every verdict, like
// gst-inspect) and by install (which requires every check to pass).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "host/plugins/inspector.h"
#include "host/plugins/manifest.h"
#include "host/plugins/signature.h"

namespace novacron {

struct CheckVerdict {
  enum class Outcome { kPass, kFail, kSkip };
  std::string name;  // "file", "manifest", "sha256", "elf", "descriptor", ...
  Outcome outcome = Outcome::kSkip;
  std::string code;    // error code on failure
  std::string detail;  // what was found, or why it failed
};

struct PackageReport {
  std::filesystem::path folder;   // folder holding the package ("" for a bare .so without one)
  std::filesystem::path library;  // the library checked
  std::optional<PluginManifest> manifest;
  std::optional<InspectionReport> inspection;
  std::string sha256;           // of the library
  std::string manifest_sha256;  // of plugin.json
  std::vector<CheckVerdict> checks;

  bool ok() const;
  const CheckVerdict* first_failure() const;
};

struct PackageCheckOptions {
  std::filesystem::path inspect_helper;
  const TrustedKeys* trusted_keys = nullptr;  // signatures checked when set and not empty
  bool require_signature = false;
  bool require_manifest = true;      // false: a bare .so may be validated alone
  bool check_owner_and_mode = true;  // as the host would when loading it from here
};

PackageReport check_plugin_package(const std::filesystem::path& path, const PackageCheckOptions& options);

}  // namespace novacron

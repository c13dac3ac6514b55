// Installing a plugin package into a host's plugin dir and pinning it in the catalog.
#pragma once

#include <filesystem>
#include <functional>

#include "host/plugins/package_check.h"
#include "host/plugins/plugin_catalog.h"

namespace novacron {

struct InstallOptions {
  std::filesystem::path plugins_dir;  // DATA_DIR/plugins
  std::filesystem::path staging_dir;  // DATA_DIR/tmp: same filesystem, for atomic renames
  PackageCheckOptions checks;
  // Called after the package passed its checks and before anything is written; an error
  // aborts the install (the running host refuses versions it has loaded).
  std::function<Expected<void>(const PluginManifest&)> precheck;
};

struct InstallResult {
  CatalogEntry entry;
  PackageReport report;
};

// Installs `source` (a package folder, or a .tar.zst/.tar.gz/.tar archive of one) as
// <plugins_dir>/<id>/<version>/ and pins its SHA-256. Every check of check_plugin_package
// must pass. An existing version is never replaced: an upgrade is a new version folder.
// Nothing is left behind on failure: the copy is staged and renamed into place, and the
// catalog row is written last (the folder is removed again if that fails).
Expected<InstallResult> install_plugin(const std::filesystem::path& source, const InstallOptions& options,
                                       PluginCatalog& catalog);

bool looks_like_archive(const std::filesystem::path& p);

}  // namespace novacron

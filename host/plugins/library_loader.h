// dlopen for verified plugin libraries (Boost.DLL). The only translation unit that includes
// Boost.DLL in the host.
//
// Libraries are never unloaded: dlclose while a plugin's threads, callbacks, exception
// objects or std::function targets may still run is the classic plugin-host crash. The
// shared_library objects are intentionally leaked, and the descriptor of the open file is
// kept open for the life of the process so that its /proc/self/fd/N name is never reused
// (glibc's dlopen would hand back the library already loaded under that name).
#pragma once

#include <string>

#include "host/common/error.h"
#include "host/plugins/plugin_file.h"
#include "novacron/sdk/descriptor.hpp"

namespace novacron {

struct LoadedLibrary {
  std::string path;  // the verified path, for messages
  const NovacronPluginDescriptor* descriptor = nullptr;
};

// Loads the already-verified file through /proc/self/fd/N (RTLD_NOW | RTLD_LOCAL), resolves
// the entry alias and calls it. Takes ownership of the file's descriptor for good.
// Loads are serialised (dlopen is not reentrant everywhere).
// Errors: "dlopen_failed", "missing_entry_symbol", "descriptor_invalid".
Expected<LoadedLibrary> load_verified_library(OpenedFile file);

// Lists the symbols in the Boost.DLL alias section using boost::dll::library_info. Only for
// pinned files or inside the inspection child: library_info has no bounds checks.
Expected<std::vector<std::string>> list_alias_symbols(const std::string& path);

// Loads an unverified library by path; for the inspection child process only.
Expected<LoadedLibrary> load_library_for_inspection(const std::string& path);

}  // namespace novacron

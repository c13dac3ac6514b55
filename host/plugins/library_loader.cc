#include "host/plugins/library_loader.h"

#define BOOST_DLL_USE_STD_FS 1
#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <mutex>

namespace novacron {
namespace {

std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

// Every library ever loaded, for the life of the process: never unloaded (see the header),
// and reachable, so that leak checkers do not report them.
std::vector<boost::dll::shared_library*>& loaded_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library*>();
  return *libs;
}

Expected<LoadedLibrary> load_path(const std::string& load_name, const std::string& display) {
  std::lock_guard<std::mutex> lock(load_mutex());
  auto* lib = new boost::dll::shared_library();
  loaded_libraries().push_back(lib);
  boost::dll::fs::error_code ec;
  lib->load(load_name, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    std::string why = ec.message();
    if (const char* e = ::dlerror(); e != nullptr) why = e;
    return make_error("dlopen_failed", display + ": dlopen failed: " + why);
  }
  if (!lib->has(NOVACRON_PLUGIN_ENTRY_SYMBOL)) {
    return make_error("missing_entry_symbol", display + ": no " NOVACRON_PLUGIN_ENTRY_SYMBOL " after loading");
  }
  auto entry = lib->get_alias<const NovacronPluginDescriptor*()>(NOVACRON_PLUGIN_ENTRY_SYMBOL);
  LoadedLibrary loaded;
  loaded.path = display;
  loaded.descriptor = entry();
  return loaded;
}

}  // namespace

Expected<LoadedLibrary> load_verified_library(OpenedFile file) {
  std::string proc_path = "/proc/self/fd/" + std::to_string(file.fd.get());
  auto loaded = load_path(proc_path, file.path.string());
  (void)file.fd.release();  // kept open for the life of the process (see header)
  return loaded;
}

Expected<LoadedLibrary> load_library_for_inspection(const std::string& path) { return load_path(path, path); }

Expected<std::vector<std::string>> list_alias_symbols(const std::string& path) {
  try {
    boost::dll::library_info info(path, /*throw_if_not_native=*/true);
    return info.symbols(NOVACRON_PLUGIN_ALIAS_SECTION);
  } catch (const std::exception& e) {
    return make_error("elf_malformed", path + ": " + e.what());
  }
}

}  // namespace novacron

// Exporting a plugin: one macro in one .cc file of the plugin.
//
//   #include "novacron/sdk/export.hpp"
//   class MyPolicy : public novacron::sdk::SchedulingPolicyBase { ... };
//   NOVACRON_PLUGIN(MyPolicy)
//
// NOVACRON_PLUGIN takes the plugin's id and version from the NOVACRON_PLUGIN_ID and
// NOVACRON_PLUGIN_VERSION macros, which novacron_add_plugin() (CMake) defines from the same
// arguments it writes into plugin.json, so the descriptor and the manifest cannot disagree.
//
// The entry is a Boost.DLL-compatible alias: an exported `const void*` variable named
// NOVACRON_PLUGIN_ENTRY_SYMBOL in the "boostdll" section, pointing at the entry function.
// boost::dll::library_info can list it without loading the library, and
// shared_library::get_alias() can resolve it; the SDK writes it by hand so that plugin
// authors need no Boost headers.
#pragma once

#include <cstdint>

#include "novacron/sdk/descriptor.hpp"
#include "novacron/sdk/version.hpp"

#define NOVACRON_PLUGIN_EXPORT __attribute__((visibility("default")))

// Low-level: exports `EntryFn` (a `const NovacronPluginDescriptor* ()` function) as the
// plugin's entry. Use NOVACRON_PLUGIN unless you must hand-craft a descriptor.
#define NOVACRON_EXPORT_ENTRY(EntryFn)                                          \
  extern "C" NOVACRON_PLUGIN_EXPORT const void* const novacron_plugin_entry_v1; \
  extern "C" NOVACRON_PLUGIN_EXPORT __attribute__((section("boostdll"), used))  \
  const void* const novacron_plugin_entry_v1 =                                  \
      reinterpret_cast<const void*>(reinterpret_cast<std::intptr_t>(&(EntryFn)));

// Builds the descriptor for `ImplClass` (derived from a kind's interface, e.g. through
// SchedulingPolicyBase) with an explicit id and version.
#define NOVACRON_PLUGIN_WITH_ID(ImplClass, IdString, VersionString)                             \
  namespace novacron_plugin_detail {                                                            \
  using Interface = ImplClass::Interface;                                                       \
  void* create() noexcept {                                                                     \
    try {                                                                                       \
      return static_cast<Interface*>(new ImplClass()); /* NOLINT(bugprone-macro-parentheses) */ \
    } catch (...) {                                                                             \
      return nullptr;                                                                           \
    }                                                                                           \
  }                                                                                             \
  void destroy(void* instance) noexcept {                                                       \
    delete static_cast<ImplClass*>(static_cast<Interface*>(instance)); /* NOLINT */             \
  }                                                                                             \
  const NovacronPluginDescriptor kDescriptor = {                                                \
      NOVACRON_PLUGIN_MAGIC,                                                                    \
      sizeof(NovacronPluginDescriptor),                                                         \
      NOVACRON_SDK_VERSION_MAJOR,                                                               \
      NOVACRON_SDK_VERSION_MINOR,                                                               \
      static_cast<std::uint32_t>(Interface::kKind),                                             \
      Interface::kInterfaceVersion,                                                             \
      0,                                                                                        \
      ::novacron::sdk::current_toolchain(),                                                     \
      IdString,                                                                                 \
      VersionString,                                                                            \
      &create,                                                                                  \
      &destroy,                                                                                 \
  };                                                                                            \
  const NovacronPluginDescriptor* entry() noexcept { return &kDescriptor; }                     \
  }                                                                                             \
  NOVACRON_EXPORT_ENTRY(novacron_plugin_detail::entry)

#define NOVACRON_PLUGIN(ImplClass) NOVACRON_PLUGIN_WITH_ID(ImplClass, NOVACRON_PLUGIN_ID, NOVACRON_PLUGIN_VERSION)

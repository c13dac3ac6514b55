// The plugin descriptor: the only thing the host reads from a plugin before it trusts any
// C++ type in it. Plain C layout, fixed-width fields, no C++ types, so that a host can read
// the descriptor of a plugin built with another SDK version or another compiler and refuse
// it with a precise reason instead of crashing.
//
// Layout rules (see docs/sdk-versioning.md): fields are only ever appended; `size` tells the
// host how many bytes the plugin's descriptor has, so a host reads only the fields the
// plugin knows about.
#pragma once

#include <stdint.h>  // NOLINT(modernize-deprecated-headers): this header is also valid C.

#ifdef __cplusplus
extern "C" {
#endif

/* "NCPL" little-endian: identifies a NovaCron plugin descriptor. */
#define NOVACRON_PLUGIN_MAGIC 0x4C50434Eu

/* Name of the exported entry (a Boost.DLL-compatible alias, see export.hpp). */
#define NOVACRON_PLUGIN_ENTRY_SYMBOL "novacron_plugin_entry_v1"
/* Section that holds Boost.DLL aliases; boost::dll::library_info lists it without loading. */
#define NOVACRON_PLUGIN_ALIAS_SECTION "boostdll"

/* Plugin kinds. Values are stable forever; new kinds get new numbers. */
enum NovacronPluginKind {
  NOVACRON_KIND_UNKNOWN = 0,
  NOVACRON_KIND_AUTH_PROVIDER = 1,
  NOVACRON_KIND_SCHEDULING_POLICY = 2,
  NOVACRON_KIND_HYPERVISOR_DRIVER = 3,   /* since SDK 1.2 */
  NOVACRON_KIND_MIGRATION_TRANSPORT = 4, /* since SDK 1.3 */
  NOVACRON_KIND_STORAGE_BACKEND = 5,     /* reserved: arrives in a later SDK minor */
  NOVACRON_KIND_CLOUD_CONNECTOR = 6      /* reserved: arrives in a later SDK minor */
};

/* Compiler and C++ standard library the plugin was built with. C++ types cross the plugin
 * boundary (std::string, std::function, vtables), so the host and plugin must agree on the
 * standard library and its ABI; the compiler itself matters less (GCC and Clang share the
 * Itanium C++ ABI) and is recorded for diagnostics. */
enum NovacronCompilerFamily { NOVACRON_COMPILER_OTHER = 0, NOVACRON_COMPILER_GCC = 1, NOVACRON_COMPILER_CLANG = 2 };
enum NovacronStdlib { NOVACRON_STDLIB_OTHER = 0, NOVACRON_STDLIB_LIBSTDCXX = 1, NOVACRON_STDLIB_LIBCXX = 2 };

struct NovacronToolchain {
  uint16_t compiler_family; /* NovacronCompilerFamily */
  uint16_t compiler_major;  /* e.g. 12 for GCC 12 */
  uint16_t stdlib;          /* NovacronStdlib */
  uint16_t stdlib_release;  /* _GLIBCXX_RELEASE for libstdc++, _LIBCPP_VERSION / 1000 for libc++ */
  uint16_t cxx11_abi;       /* _GLIBCXX_USE_CXX11_ABI (1 = new std::string/std::list) */
  uint16_t reserved;
};

/* Creates the plugin's instance and returns it as a pointer to the interface of its kind
 * (for example novacron::sdk::SchedulingPolicy*). Returns NULL on failure. Never throws. */
typedef void* (*NovacronCreateFn)(void);
/* Destroys an instance created by the same plugin's create function. Never throws. */
typedef void (*NovacronDestroyFn)(void* instance);

struct NovacronPluginDescriptor {
  uint32_t magic;             /* NOVACRON_PLUGIN_MAGIC */
  uint32_t size;              /* sizeof(NovacronPluginDescriptor) in the plugin's SDK */
  uint16_t sdk_major;         /* NOVACRON_SDK_VERSION_MAJOR the plugin was built with */
  uint16_t sdk_minor;         /* NOVACRON_SDK_VERSION_MINOR the plugin was built with */
  uint32_t kind;              /* NovacronPluginKind */
  uint32_t interface_version; /* version of the kind's interface the plugin implements */
  uint32_t reserved;
  struct NovacronToolchain toolchain;
  const char* id;      /* reverse-DNS, e.g. "io.novacron.policy.binpack" */
  const char* version; /* semantic version of the plugin itself, e.g. "1.2.0" */
  NovacronCreateFn create;
  NovacronDestroyFn destroy;
};

/* The entry function: returns a pointer to a descriptor with static storage duration. */
typedef const struct NovacronPluginDescriptor* (*NovacronEntryFn)(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#ifdef __cplusplus
#include <cstddef>  // defines _GLIBCXX_RELEASE / _LIBCPP_VERSION

namespace novacron::sdk {

/* The toolchain that compiles the including translation unit. */
constexpr NovacronToolchain current_toolchain() {
  NovacronToolchain t{};
#if defined(__clang__)
  t.compiler_family = NOVACRON_COMPILER_CLANG;
  t.compiler_major = __clang_major__;
#elif defined(__GNUC__)
  t.compiler_family = NOVACRON_COMPILER_GCC;
  t.compiler_major = __GNUC__;
#endif
#if defined(_GLIBCXX_RELEASE)
  t.stdlib = NOVACRON_STDLIB_LIBSTDCXX;
  t.stdlib_release = _GLIBCXX_RELEASE;
  t.cxx11_abi = _GLIBCXX_USE_CXX11_ABI;
#elif defined(_LIBCPP_VERSION)
  t.stdlib = NOVACRON_STDLIB_LIBCXX;
  t.stdlib_release = _LIBCPP_VERSION / 1000;
#endif
  return t;
}

}  // namespace novacron::sdk
#endif

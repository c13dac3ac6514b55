#include "host/plugins/inspector.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "host/common/subprocess.h"
#include "host/common/unique_fd.h"
#include "host/plugins/elf_check.h"
#include "host/plugins/library_loader.h"
#include "host/plugins/manifest.h"

namespace novacron {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int emit_error(const Error& e) {
  std::cout << json{{"ok", false}, {"code", e.code}, {"message", e.message}}.dump() << std::endl;
  return 1;
}

void limit_child_resources() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(NOVACRON_UNDER_SANITIZER)
  // A crafted file may make a parser allocate absurd amounts: cap the address space.
  // (AddressSanitizer reserves terabytes of shadow memory, so not under it.)
  struct rlimit as_limit {
    4ull << 30, 4ull << 30
  };
  ::setrlimit(RLIMIT_AS, &as_limit);
#endif
  struct rlimit no_core {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &no_core);
}

}  // namespace

fs::path default_inspect_helper() {
  if (const char* env = std::getenv("NOVACRON_INSPECT_HELPER"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / ".." / "libexec" / "novacron" / "novacron-plugin-inspect").lexically_normal();
}

int run_inspection(const std::string& library) {
  limit_child_resources();
  UniqueFd fd(::open(library.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return emit_error(Error{"io", library + ": cannot open"});
  // Our own bounded checks first: they explain most broken files precisely.
  if (auto elf = check_plugin_elf(fd.get()); !elf) return emit_error(elf.error());
  auto symbols = list_alias_symbols(library);
  if (!symbols) return emit_error(symbols.error());
  auto loaded = load_library_for_inspection(library);
  if (!loaded) return emit_error(loaded.error());
  auto info = read_descriptor(loaded->descriptor);
  if (!info) return emit_error(info.error());

  json out = {{"ok", true},
              {"alias_symbols", *symbols},
              {"descriptor",
               {{"id", info->id},
                {"version", info->version},
                {"kind", kind_name(info->kind)},
                {"kind_value", info->kind},
                {"interface_version", info->interface_version},
                {"sdk_major", info->sdk_major},
                {"sdk_minor", info->sdk_minor},
                {"toolchain",
                 {{"compiler_family", info->toolchain.compiler_family},
                  {"compiler_major", info->toolchain.compiler_major},
                  {"stdlib", info->toolchain.stdlib},
                  {"stdlib_release", info->toolchain.stdlib_release},
                  {"cxx11_abi", info->toolchain.cxx11_abi}}}}}};
  std::cout << out.dump() << std::endl;
  return 0;
}

Expected<InspectionReport> inspect_in_child(const fs::path& helper, const fs::path& library,
                                            std::chrono::milliseconds timeout) {
  SubprocessOptions options;
  options.timeout = timeout;
  auto run = run_subprocess({helper.string(), library.string()}, options);
  if (!run) {
    return make_error("inspection_failed",
                      "cannot start the inspection helper " + helper.string() + ": " + run.error().message);
  }
  if (run->timed_out || run->term_signal != 0) {
    return make_error("inspection_crashed", library.string() + ": the plugin " + describe_exit(*run) +
                                                " while being inspected in a child process");
  }
  // The report is the last line: plugin constructors may have printed before it. (The child
  // contains crashes; it is not a boundary against a hostile plugin, which could print a
  // report of its own. Trust comes from the install decision, the pin and the signature,
  // and the host re-checks the descriptor in-process before using the plugin.)
  std::string report_line = run->out;
  while (!report_line.empty() && report_line.back() == '\n') report_line.pop_back();
  if (auto nl = report_line.rfind('\n'); nl != std::string::npos) report_line = report_line.substr(nl + 1);
  json j = json::parse(report_line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    return make_error("inspection_failed", library.string() + ": the inspection helper " + describe_exit(*run) +
                                               " without a report" +
                                               (run->err.empty() ? "" : ": " + run->err.substr(0, 300)));
  }
  try {
    if (!j["ok"].get<bool>()) {
      return make_error(j.value("code", "inspection_failed"), j.value("message", "refused"));
    }
    const json& d = j.at("descriptor");
    InspectionReport report;
    report.alias_symbols = j.at("alias_symbols").get<std::vector<std::string>>();
    report.descriptor.id = d.at("id").get<std::string>();
    report.descriptor.version = d.at("version").get<std::string>();
    report.descriptor.kind = d.at("kind_value").get<std::uint32_t>();
    report.descriptor.interface_version = d.at("interface_version").get<std::uint32_t>();
    report.descriptor.sdk_major = d.at("sdk_major").get<std::uint16_t>();
    report.descriptor.sdk_minor = d.at("sdk_minor").get<std::uint16_t>();
    const json& t = d.at("toolchain");
    report.descriptor.toolchain.compiler_family = t.at("compiler_family").get<std::uint16_t>();
    report.descriptor.toolchain.compiler_major = t.at("compiler_major").get<std::uint16_t>();
    report.descriptor.toolchain.stdlib = t.at("stdlib").get<std::uint16_t>();
    report.descriptor.toolchain.stdlib_release = t.at("stdlib_release").get<std::uint16_t>();
    report.descriptor.toolchain.cxx11_abi = t.at("cxx11_abi").get<std::uint16_t>();
    report.toolchain = describe_toolchain(report.descriptor.toolchain);
    return report;
  } catch (const json::exception& e) {
    return make_error("inspection_failed", library.string() + ": malformed inspection report: " + e.what());
  }
}

}  // namespace novacron

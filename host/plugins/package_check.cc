#include "host/plugins/package_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/common/sha256.h"
#include "host/common/unique_fd.h"
#include "host/plugins/elf_check.h"
#include "host/plugins/plugin_file.h"

namespace novacron {
namespace fs = std::filesystem;
using Outcome = CheckVerdict::Outcome;

bool PackageReport::ok() const { return first_failure() == nullptr && !checks.empty(); }

const CheckVerdict* PackageReport::first_failure() const {
  for (const auto& c : checks) {
    if (c.outcome == Outcome::kFail) return &c;
  }
  return nullptr;
}

namespace {

void pass(PackageReport& r, std::string name, std::string detail) {
  r.checks.push_back({std::move(name), Outcome::kPass, "", std::move(detail)});
}
void fail(PackageReport& r, std::string name, const Error& e) {
  r.checks.push_back({std::move(name), Outcome::kFail, e.code, e.message});
}
void skip(PackageReport& r, std::string name, std::string why) {
  r.checks.push_back({std::move(name), Outcome::kSkip, "", std::move(why)});
}

// Opens a file of the package without following a symlink; checks owner/mode on request.
Expected<UniqueFd> open_package_file(const fs::path& p, bool check_mode) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return make_error("not_found", p.string() + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode)) return make_error("symlink", p.string() + " is a symbolic link");
  if (!S_ISREG(st.st_mode)) return make_error("not_regular", p.string() + " is not a regular file");
  if (check_mode) {
    if (auto r = check_owner_and_mode(st, p.string()); !r) return tl::unexpected(r.error());
  }
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return make_error("io", p.string() + ": " + std::strerror(errno));
  return fd;
}

Expected<std::string> read_small(int fd, size_t limit) {
  std::string data;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0) return make_error("io", std::strerror(errno));
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    off += n;
    if (data.size() > limit) return make_error("manifest_invalid", "manifest larger than the limit");
  }
  return data;
}

void check_manifest(PackageReport& r, const fs::path& manifest_path, const PackageCheckOptions& opt) {
  auto fd = open_package_file(manifest_path, opt.check_owner_and_mode);
  if (!fd) return fail(r, "manifest", fd.error());
  auto text = read_small(fd->get(), kMaxManifestBytes);
  if (!text) return fail(r, "manifest", text.error());
  r.manifest_sha256 = to_hex(sha256_bytes(*text));
  auto m = parse_manifest(*text, manifest_path.string());
  if (!m) return fail(r, "manifest", m.error());
  if (!r.folder.empty() && r.library.empty()) r.library = r.folder / m->library;
  if (r.library.filename() != m->library) {
    return fail(
        r, "manifest",
        Error{"manifest_mismatch", "manifest names library " + m->library + ", not " + r.library.filename().string()});
  }
  pass(r, "manifest", m->id + " " + m->version + " (" + m->kind + "), SDK " + m->sdk_version);
  r.manifest = std::move(*m);
}

void check_descriptor(PackageReport& r, const PackageCheckOptions& opt) {
  auto report = inspect_in_child(opt.inspect_helper, r.library);
  if (!report) {
    fail(r, "descriptor", report.error());
    return skip(r, "compatibility", "no descriptor");
  }
  const DescriptorInfo& d = report->descriptor;
  pass(r, "descriptor",
       d.id + " " + d.version + ", " + kind_name(d.kind) + " interface v" + std::to_string(d.interface_version) +
           ", SDK " + std::to_string(d.sdk_major) + "." + std::to_string(d.sdk_minor) + ", built with " +
           report->toolchain);
  r.inspection = std::move(*report);
  if (auto c = check_compatibility(d, sdk::current_toolchain()); !c) {
    fail(r, "compatibility", c.error());
  } else {
    pass(r, "compatibility", "compatible with this host's SDK and toolchain");
  }
}

void check_consistency(PackageReport& r) {
  if (!r.manifest || !r.inspection) return skip(r, "manifest matches descriptor", "needs both");
  const auto& m = *r.manifest;
  const auto& d = r.inspection->descriptor;
  if (m.id != d.id || m.version != d.version) {
    return fail(r, "manifest matches descriptor",
                Error{"manifest_mismatch",
                      "manifest says " + m.id + " " + m.version + ", the library says " + d.id + " " + d.version});
  }
  if (kind_from_name(m.kind) != static_cast<NovacronPluginKind>(d.kind)) {
    return fail(r, "manifest matches descriptor",
                Error{"kind_mismatch", "manifest declares kind " + m.kind + ", the library is a " + kind_name(d.kind)});
  }
  pass(r, "manifest matches descriptor", "id, version and kind agree");
}

void check_signature(PackageReport& r, const PackageCheckOptions& opt) {
  if (opt.trusted_keys == nullptr || opt.trusted_keys->empty()) {
    if (opt.require_signature) {
      return fail(r, "signature",
                  Error{"signature_required", "signatures are required but no trusted key is configured"});
    }
    return skip(r, "signature", "no trusted keys configured");
  }
  fs::path sig = r.library.string() + ".sig";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(sig, ec))) {
    if (opt.require_signature) {
      return fail(r, "signature",
                  Error{"signature_missing", "signatures are required and " + sig.string() + " is missing"});
    }
    return skip(r, "signature", "unsigned (no " + sig.filename().string() + ")");
  }
  if (!r.manifest || r.sha256.empty()) return skip(r, "signature", "needs the manifest and the hash");
  auto bytes = read_signature_file(sig);
  if (!bytes) return fail(r, "signature", bytes.error());
  auto signer =
      opt.trusted_keys->verify(plugin_signature_message(r.manifest->id, r.manifest->version, r.sha256), *bytes);
  if (!signer) return fail(r, "signature", signer.error());
  pass(r, "signature", "signed by trusted key " + *signer);
}

}  // namespace

PackageReport check_plugin_package(const fs::path& path, const PackageCheckOptions& opt) {
  PackageReport r;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    fail(r, "file", Error{"not_found", path.string() + ": " + std::strerror(errno)});
    return r;
  }
  if (S_ISLNK(st.st_mode)) {
    fail(r, "file", Error{"symlink", path.string() + " is a symbolic link"});
    return r;
  }
  fs::path manifest_path;
  if (S_ISDIR(st.st_mode)) {
    r.folder = path;
    manifest_path = path / "plugin.json";
  } else {
    r.library = path;
    fs::path sibling = path.parent_path() / "plugin.json";
    std::error_code ec;
    if (fs::exists(fs::symlink_status(sibling, ec))) {
      r.folder = path.parent_path();
      manifest_path = sibling;
    }
  }

  if (!manifest_path.empty()) {
    check_manifest(r, manifest_path, opt);
  } else if (opt.require_manifest) {
    fail(r, "manifest", Error{"manifest_missing", "no plugin.json next to " + path.string()});
  } else {
    skip(r, "manifest", "no plugin.json next to the library");
  }
  if (r.library.empty()) return r;  // folder without a readable manifest: nothing more to check

  auto fd = open_package_file(r.library, opt.check_owner_and_mode);
  if (!fd) {
    fail(r, "file", fd.error());
    return r;
  }
  pass(
      r, "file",
      r.library.string() + (opt.check_owner_and_mode ? ": regular file, owner and mode acceptable" : ": regular file"));

  auto digest = sha256_fd(fd->get());
  if (!digest) {
    fail(r, "sha256", digest.error());
  } else {
    r.sha256 = to_hex(*digest);
    if (r.manifest && r.manifest->sha256 != r.sha256) {
      fail(r, "sha256",
           Error{"sha256_mismatch", "library hashes to " + r.sha256 + ", the manifest pins " + r.manifest->sha256 +
                                        " (file changed after it was built?)"});
    } else {
      pass(r, "sha256", r.sha256);
    }
  }

  auto elf = check_plugin_elf(fd->get());
  if (!elf) {
    fail(r, "elf", elf.error());
    skip(r, "descriptor", "not a loadable plugin library");
  } else {
    pass(r, "elf",
         "shared object for this machine, " + std::to_string(elf->section_count) +
             " sections, exports " NOVACRON_PLUGIN_ENTRY_SYMBOL);
    check_descriptor(r, opt);
  }
  check_consistency(r);
  check_signature(r, opt);
  return r;
}

}  // namespace novacron

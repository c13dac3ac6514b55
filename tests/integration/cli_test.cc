// The novacron CLI as a real process: plugin validate (like gst-inspect), offline install
// from folders and archives, config validate; --json output for scripts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/archive_writer.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

SubprocessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), (bin_dir() / "novacron").string());
  return run(args);
}

// The outcome of the named check in a --json validate report.
std::string outcome(const json& report, const std::string& check) {
  for (const auto& c : report["checks"]) {
    if (c["check"] == check) return c["outcome"];
  }
  return "absent";
}

std::string detail(const json& report, const std::string& check) {
  for (const auto& c : report["checks"]) {
    if (c["check"] == check) return c["detail"];
  }
  return "";
}

TEST(CliTest, ValidateAcceptsAGoodPluginFolder) {
  auto r = cli({"plugin", "validate", fixture("io.novacron.test.good").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json report = json::parse(r.out);
  EXPECT_EQ(report["verdict"], "valid");
  for (const char* check :
       {"manifest", "file", "sha256", "elf", "descriptor", "compatibility", "manifest matches descriptor"}) {
    EXPECT_EQ(outcome(report, check), "pass") << check;
  }
  EXPECT_EQ(report["manifest"]["id"], "io.novacron.test.good");
}

TEST(CliTest, ValidatePrintsAHumanReport) {
  auto r = cli({"plugin", "validate", (bundled_plugin_dir() / "io.novacron.policy.resource-fit/2.0.0").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Plugin      io.novacron.policy.resource-fit 2.0.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu_allocation_ratio (number, default 4.0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verdict: valid"), std::string::npos);
}

TEST(CliTest, ValidateReportsACrashingPluginWithoutCrashing) {
  auto r = cli({"--json", "plugin", "validate", fixture("io.novacron.test.ctor-crash").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json report = json::parse(r.out);
  EXPECT_EQ(report["verdict"], "invalid");
  EXPECT_EQ(outcome(report, "descriptor"), "FAIL");
  EXPECT_NE(detail(report, "descriptor").find("SIGSEGV"), std::string::npos) << r.out;
  EXPECT_EQ(outcome(report, "sha256"), "pass");  // unrelated checks still ran
}

TEST(CliTest, ValidateExplainsEachRefusal) {
  TempDir dir;
  struct Case {
    std::string id;
    std::string check;
    std::string expect;
  } cases[] = {{"io.novacron.test.sdk-major", "compatibility", "majors must match"},
               {"io.novacron.test.sdk-minor", "compatibility", "newer than this host"},
               {"io.novacron.test.fingerprint", "compatibility", "standard library"},
               {"io.novacron.test.kind-mismatch", "manifest matches descriptor", "declares kind auth_provider"},
               {"io.novacron.test.no-entry", "elf", "novacron_plugin_entry_v1"}};
  for (const auto& c : cases) {
    auto r = cli({"--json", "plugin", "validate", fixture(c.id).string()});
    EXPECT_EQ(r.exit_code, 1) << c.id;
    json report = json::parse(r.out);
    EXPECT_EQ(outcome(report, c.check), "FAIL") << c.id << ": " << r.out;
    EXPECT_NE(detail(report, c.check).find(c.expect), std::string::npos) << c.id << ": " << r.out;
  }
  fs::path text = dir / "libfake.so";
  write_file(text, "not a library at all");
  auto r = cli({"--json", "plugin", "validate", text.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(outcome(json::parse(r.out), "elf"), "FAIL");
  EXPECT_NE(detail(json::parse(r.out), "elf").find("not an ELF file"), std::string::npos);
}

TEST(CliTest, OfflineInstallFromArchiveThenList) {
  TempDir dir;
  fs::path pkg = dir / "good.tar.zst";
  write_archive(pkg, entries_of_folder(fixture("io.novacron.test.good"), "io.novacron.test.good-1.0.0"));
  auto r = cli({"plugin", "install", "--data-dir", (dir / "data").string(), pkg.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("installed io.novacron.test.good 1.0.0"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "data/plugins/io.novacron.test.good/1.0.0/plugin.json"));

  auto again = cli({"--json", "plugin", "install", "--data-dir", (dir / "data").string(), pkg.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(json::parse(again.out)["error"]["code"], "already_installed");

  auto list = cli({"plugin", "list", "--data-dir", (dir / "data").string()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("ID"), std::string::npos);
  EXPECT_NE(list.out.find("io.novacron.test.good  1.0.0"), std::string::npos) << list.out;
}

TEST(CliTest, OfflineInstallRefusesUnsafeArchives) {
  TempDir dir;
  struct Case {
    std::string name;
    ArchiveEntry bad;
    std::string expect;
  } cases[] = {
      {"dotdot", {"pkg/../../evil", ArchiveEntry::Type::kFile, "x", "", 0644}, "contains \"..\""},
      {"absolute", {"/tmp/evil-novacron", ArchiveEntry::Type::kFile, "x", "", 0644}, "absolute path"},
      {"symlink", {"pkg/link", ArchiveEntry::Type::kSymlink, "", "/etc/passwd", 0777}, "symbolic link"},
      {"hardlink", {"pkg/hard", ArchiveEntry::Type::kHardlink, "", "/etc/passwd", 0644}, "hard link"},
  };
  for (const auto& c : cases) {
    fs::path pkg = dir / (c.name + ".tar.zst");
    auto entries = entries_of_folder(fixture("io.novacron.test.good"), "pkg");
    entries.insert(entries.begin() + 1, c.bad);
    write_archive(pkg, entries);
    auto r = cli({"plugin", "install", "--data-dir", (dir / "data").string(), pkg.string()});
    EXPECT_EQ(r.exit_code, 1) << c.name;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": " << r.err;
    EXPECT_FALSE(fs::exists(dir / "data/plugins/io.novacron.test.good")) << c.name;
  }
  EXPECT_FALSE(fs::exists("/tmp/evil-novacron"));
  EXPECT_FALSE(fs::exists(dir.path().parent_path() / "evil"));
}

TEST(CliTest, ConfigValidate) {
  TempDir dir;
  auto ok = cli({"config", "validate", (source_dir() / "docs/examples/novacrond.json").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("valid"), std::string::npos);
  fs::path bad = dir / "bad.json";
  write_file(bad, R"({"plugins": {"require_signatures": 1}})");
  auto r = cli({"config", "validate", bad.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/plugins/require_signatures: expected true or false, got 1"), std::string::npos) << r.err;
  auto j = cli({"config", "validate", bad.string(), "--json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(json::parse(j.out)["valid"], false);
}

TEST(CliTest, UsageErrorsExitWithCode2OrHelp) {
  auto missing = cli({"plugin", "install"});  // no PATH
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("PATH"), std::string::npos) << missing.err;
  // Without --data-dir/--config an install goes through the API; the package is read first.
  auto r = cli({"plugin", "install", "x.tar.zst"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("x.tar.zst: cannot read the package"), std::string::npos) << r.err;
  auto unknown = cli({"frobnicate"});
  EXPECT_NE(unknown.exit_code, 0);
}

}  // namespace
}  // namespace novacron

// The plugin manager against real plugin libraries (tests/fixtures), a real SQLite catalog
// and real files: every refusal the issue lists, and that the manager keeps working after it.
#include "host/plugins/plugin_manager.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "host/common/build_id.h"
#include "host/common/sha256.h"
#include "host/state/schema.h"
#include "tests/support/archive_writer.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using testing::copy_fixture;
using testing::fixture;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kGood = "io.novacron.test.good";

class PluginManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "plugins");
    fs::create_directories(dir_ / "tmp");
    db_ = std::move(*open_host_database(dir_.path()));
    catalog_ = std::make_unique<PluginCatalog>(*db_);
    kv_ = std::make_unique<KvStore>(*db_);
  }

  PluginManager& manager() {
    if (!manager_) {
      PluginManagerOptions o;
      o.plugin_dirs = {dir_ / "plugins"};
      for (const auto& d : extra_dirs_) o.plugin_dirs.push_back(d);
      o.bundled_dir = bundled_dir_;
      o.staging_dir = dir_ / "tmp";
      o.inspect_helper = testing::inspect_helper();
      o.trusted_keys = keys_;
      o.require_signatures = require_signatures_;
      manager_ = std::make_unique<PluginManager>(
          std::move(o), *catalog_,
          HostContext{"node-test", dir_.path().string(), kv_.get(), &events_, &metrics_, &pools_});
    }
    return *manager_;
  }

  // Copies a fixture into the plugin dir and pins whatever library is there then, as an
  // install by an older host (without today's checks) would have: isolates the load checks.
  fs::path place_and_pin(const std::string& id, const std::function<void(const fs::path&)>& tamper = {}) {
    fs::path dest = copy_fixture(id, dir_ / "plugins");
    fs::path lib = library_of(dest);
    if (tamper) tamper(lib);
    std::string manifest = testing::read_file(dest / "plugin.json");
    CatalogEntry e{id,
                   "1.0.0",
                   dest.string(),
                   lib.filename().string(),
                   to_hex(*sha256_file(lib.string())),
                   to_hex(sha256_bytes(manifest)),
                   parse_manifest(manifest, "plugin.json")->kind,
                   "installed",
                   "",
                   0};
    EXPECT_TRUE(catalog_->pin(e).has_value());
    return dest;
  }

  static fs::path library_of(const fs::path& folder) {
    for (const auto& e : fs::directory_iterator(folder)) {
      if (e.path().extension() == ".so") return e.path();
    }
    return {};
  }

  Expected<PluginStatus> load(const std::string& id, const std::string& config = "{}", bool required = false) {
    PluginLoadSpec spec;
    spec.id = id;
    spec.config_json = config;
    spec.required = required;
    return manager().load(spec);
  }

  // After a refusal the manager must still load and run a good plugin.
  void expect_still_working() {
    auto st = manager().status(kGood);
    if (!st || st->state != "running") {
      if (!fs::exists(dir_ / "plugins" / kGood)) ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
      auto r = load(kGood);
      ASSERT_TRUE(r.has_value()) << r.error().message;
    }
    EXPECT_TRUE(manager().scheduling_policy(kGood));
  }

  void expect_refused(const std::string& id, const std::string& code, const std::string& message_part = "") {
    auto r = load(id);
    ASSERT_FALSE(r.has_value()) << id << " loaded but should have been refused with " << code;
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(id), std::string::npos) << "message should name the plugin: " << r.error().message;
    if (!message_part.empty()) EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().message;
    auto st = manager().status(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_NE(st->state, "running");
    EXPECT_EQ(st->error_code, code);
    expect_still_working();
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<PluginCatalog> catalog_;
  std::unique_ptr<KvStore> kv_;
  EventBus events_;
  MetricsRegistry metrics_;
  ExecutorPools pools_{1, 1};
  std::vector<fs::path> extra_dirs_;
  fs::path bundled_dir_;
  TrustedKeys keys_;
  bool require_signatures_ = false;
  std::unique_ptr<PluginManager> manager_;
};

TEST_F(PluginManagerTest, ValidPluginLoadsAndAnswers) {
  auto installed = manager().install(fixture(kGood));
  ASSERT_TRUE(installed.has_value()) << installed.error().message;
  EXPECT_EQ(installed->entry.sha256,
            to_hex(*sha256_file((fs::path(installed->entry.dir) / installed->entry.library).string())));

  auto st = load(kGood, R"({"marker": "m-42"})");
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(st->state, "running");
  EXPECT_EQ(st->version, "1.0.0");
  EXPECT_EQ(st->kind, "scheduling_policy");

  auto policy = manager().scheduling_policy(kGood);
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->roles(), sdk::kPolicyFilters | sdk::kPolicyScores);
  std::vector<sdk::NodeCandidate> nodes(2);
  nodes[0].name = "node-a";
  nodes[0].capacity.memory_mib = 4096;
  nodes[1].name = "reject-b";
  std::vector<sdk::FilterVerdict> verdicts(2);
  ASSERT_TRUE(policy->filter({}, nodes, verdicts).is_ok());
  EXPECT_TRUE(verdicts[0].pass);
  EXPECT_FALSE(verdicts[1].pass);
  EXPECT_EQ(verdicts[1].reason, "name starts with reject-");
  std::vector<sdk::NodeScore> scores(2);
  ASSERT_TRUE(policy->score({}, nodes, scores).is_ok());
  EXPECT_EQ(scores[0].score, 4096);
  EXPECT_EQ(scores[0].reason, "m-42");

  // An exception thrown by plugin code comes back as a Status, not as an exception.
  nodes[1].name = "throw";
  sdk::Status s = policy->score({}, nodes, scores);
  EXPECT_EQ(s.code(), sdk::StatusCode::kInternal);
  EXPECT_NE(s.message().find("score exploded"), std::string::npos) << s.message();

  // HostServices reached the host: namespaced kv, event bus, metrics.
  auto kv = kv_->get(kGood, "started-with");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value_or(""), "m-42");
  auto evs = events_.since(0);
  ASSERT_TRUE(evs.has_value());
  bool saw_started = false, saw_loaded = false;
  for (const auto& e : *evs) {
    saw_started |= e.type == "test.started" && e.source == kGood;
    saw_loaded |= e.type == "plugin.loaded" && e.object == std::string("plugin/") + kGood;
  }
  EXPECT_TRUE(saw_started);
  EXPECT_TRUE(saw_loaded);
  EXPECT_NE(metrics_.render_prometheus().find("novacron_test_policy_starts_total{plugin=\"io.novacron.test.good\"} 1"),
            std::string::npos)
      << metrics_.render_prometheus();
}

TEST_F(PluginManagerTest, AuthProviderKindLoadsAndAuthenticates) {
  ASSERT_TRUE(manager().install(fixture("io.novacron.test.auth")).has_value());
  ASSERT_TRUE(load("io.novacron.test.auth").has_value());
  auto auth = manager().auth_provider("io.novacron.test.auth");
  ASSERT_TRUE(auth);
  EXPECT_FALSE(manager().scheduling_policy("io.novacron.test.auth"));  // wrong kind: no cast
  sdk::AuthRequest req;
  req.headers = {{"authorization", "Test alice"}};
  sdk::AuthResult r = auth->authenticate(req);
  EXPECT_EQ(r.outcome, sdk::AuthOutcome::kAuthenticated);
  EXPECT_EQ(r.principal.name, "test:alice");
  req.headers = {{"authorization", "Bearer x"}};
  EXPECT_EQ(auth->authenticate(req).outcome, sdk::AuthOutcome::kNotMine);
}

TEST_F(PluginManagerTest, SdkMajorMismatchIsRefused) {
  place_and_pin("io.novacron.test.sdk-major");
  expect_refused("io.novacron.test.sdk-major", "sdk_major_mismatch", "SDK 2.0");
}

TEST_F(PluginManagerTest, NewerSdkMinorIsRefused) {
  place_and_pin("io.novacron.test.sdk-minor");
  expect_refused("io.novacron.test.sdk-minor", "sdk_minor_too_new", "1.99");
}

TEST_F(PluginManagerTest, IncompatibleToolchainFingerprintIsRefused) {
  place_and_pin("io.novacron.test.fingerprint");
  expect_refused("io.novacron.test.fingerprint", "toolchain_incompatible", "pre-cxx11");
  place_and_pin("io.novacron.test.libcxx");
  expect_refused("io.novacron.test.libcxx", "toolchain_incompatible", "libc++");
}

TEST_F(PluginManagerTest, KindDifferentFromManifestIsRefused) {
  place_and_pin("io.novacron.test.kind-mismatch");
  expect_refused("io.novacron.test.kind-mismatch", "kind_mismatch", "auth_provider");
}

TEST_F(PluginManagerTest, FileChangedAfterInstallIsRefused) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  fs::path lib = library_of(dir_ / "plugins" / kGood / "1.0.0");
  std::string bytes = testing::read_file(lib);
  bytes[bytes.size() - 1] ^= 0x5a;  // flip bits in the last byte: still a valid ELF
  testing::replace_file(lib, bytes);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "sha256_mismatch");
  EXPECT_NE(r.error().message.find("changed after it was installed"), std::string::npos) << r.error().message;
}

TEST_F(PluginManagerTest, MissingEntrySymbolIsRefused) {
  place_and_pin("io.novacron.test.no-entry");
  expect_refused("io.novacron.test.no-entry", "missing_entry_symbol", "novacron_plugin_entry_v1");
}

TEST_F(PluginManagerTest, NonElfFileIsRefused) {
  place_and_pin("io.novacron.test.no-entry",
                [](const fs::path& lib) { testing::write_file(lib, "#!/bin/sh\necho hi\n"); });
  expect_refused("io.novacron.test.no-entry", "not_elf");
}

TEST_F(PluginManagerTest, TruncatedFileIsRefused) {
  place_and_pin("io.novacron.test.no-entry", [](const fs::path& lib) { fs::resize_file(lib, fs::file_size(lib) / 2); });
  expect_refused("io.novacron.test.no-entry", "elf_truncated");
}

// Patches the ELF header of `lib` through `patch` (applied to the Elf64_Ehdr and the section
// header table), as an attacker crafting a file would.
void patch_elf(const fs::path& lib, const std::function<void(Elf64_Ehdr&, std::vector<Elf64_Shdr>&)>& patch) {
  std::string bytes = testing::read_file(lib);
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  std::memcpy(sh.data(), bytes.data() + eh.e_shoff, sh.size() * sizeof(Elf64_Shdr));
  const auto original_shoff = eh.e_shoff;
  patch(eh, sh);
  std::memcpy(bytes.data(), &eh, sizeof eh);
  std::memcpy(bytes.data() + original_shoff, sh.data(), sh.size() * sizeof(Elf64_Shdr));
  testing::write_file(lib, bytes);
}

TEST_F(PluginManagerTest, CraftedElfWithAbsurdSectionSizesIsRefused) {
  place_and_pin("io.novacron.test.no-entry", [](const fs::path& lib) {
    patch_elf(lib, [](Elf64_Ehdr&, std::vector<Elf64_Shdr>& sh) {
      for (auto& s : sh) {
        if (s.sh_type == SHT_DYNSYM || s.sh_type == SHT_STRTAB) s.sh_size = 1ull << 60;
      }
    });
  });
  expect_refused("io.novacron.test.no-entry", "elf_truncated", "beyond the end of the file");
}

TEST_F(PluginManagerTest, CraftedElfWithAbsurdSectionCountIsRefused) {
  place_and_pin("io.novacron.test.no-entry", [](const fs::path& lib) {
    patch_elf(lib, [](Elf64_Ehdr& eh, std::vector<Elf64_Shdr>&) {
      eh.e_shnum = 65535;
      eh.e_shoff = 1ull << 62;
    });
  });
  expect_refused("io.novacron.test.no-entry", "elf_malformed", "section count");
}

TEST_F(PluginManagerTest, SymlinkedLibraryIsRefused) {
  fs::path dest = place_and_pin(kGood);
  fs::path lib = library_of(dest);
  fs::path elsewhere = dir_ / "elsewhere.so";
  fs::rename(lib, elsewhere);
  fs::create_symlink(elsewhere, lib);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "symlink");
  EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos);
}

TEST_F(PluginManagerTest, SymlinkedVersionFolderIsRefused) {
  fs::path dest = place_and_pin(kGood);
  fs::path real = dir_ / "real-version";
  fs::rename(dest, real);
  fs::create_directory_symlink(real, dest);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "symlink");
}

TEST_F(PluginManagerTest, GroupWritableLibraryIsRefused) {
  fs::path lib = library_of(place_and_pin(kGood));
  ::chmod(lib.c_str(), 0775);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "writable");
  EXPECT_NE(r.error().message.find("chmod go-w"), std::string::npos) << r.error().message;
}

TEST_F(PluginManagerTest, WorldWritableFolderIsRefused) {
  fs::path dest = place_and_pin(kGood);
  ::chmod(dest.c_str(), 0777);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "writable");
  EXPECT_NE(r.error().message.find("everyone"), std::string::npos) << r.error().message;
}

TEST_F(PluginManagerTest, SameVersionInTwoPluginDirsIsRefusedAsDuplicate) {
  TempDir other;
  extra_dirs_ = {other.path()};
  place_and_pin(kGood);
  copy_fixture(kGood, other.path());
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "duplicate");
  EXPECT_NE(r.error().message.find(other.path().string()), std::string::npos) << r.error().message;
}

TEST_F(PluginManagerTest, LoadingAnIdTwiceIsRefused) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  ASSERT_TRUE(load(kGood).has_value());
  auto again = load(kGood);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, "duplicate_id");
  EXPECT_TRUE(manager().scheduling_policy(kGood));  // the first instance is untouched
}

TEST_F(PluginManagerTest, ReinstallOverLoadedVersionIsRefused) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  ASSERT_TRUE(load(kGood).has_value());
  fs::path lib = library_of(dir_ / "plugins" / kGood / "1.0.0");
  auto before = sha256_file(lib.string());
  auto r = manager().install(fixture(kGood));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "plugin_loaded");
  EXPECT_NE(r.error().message.find("new version"), std::string::npos) << r.error().message;
  EXPECT_EQ(*sha256_file(lib.string()), *before);
  // A new version installs next to it.
  auto v2 = manager().install(fixture(kGood, "2.0.0"));
  ASSERT_TRUE(v2.has_value()) << v2.error().message;
  EXPECT_TRUE(fs::exists(dir_ / "plugins" / kGood / "2.0.0" / "plugin.json"));
}

TEST_F(PluginManagerTest, ReinstallOfInstalledVersionIsRefusedOffline) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  auto r = manager().install(fixture(kGood));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "already_installed");
}

TEST_F(PluginManagerTest, NewestVersionIsChosenUnlessPinnedInConfig) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  ASSERT_TRUE(manager().install(fixture(kGood, "2.0.0")).has_value());
  PluginLoadSpec spec{kGood, std::string("1.0.0"), false, "{}"};
  auto v1 = manager().load(spec);
  ASSERT_TRUE(v1.has_value()) << v1.error().message;
  EXPECT_EQ(v1->version, "1.0.0");
  manager().stop_all();
  // A fresh manager (a restarted host) picks the newest.
  manager_.reset();
  auto newest = load(kGood);
  ASSERT_TRUE(newest.has_value()) << newest.error().message;
  EXPECT_EQ(newest->version, "2.0.0");
}

TEST_F(PluginManagerTest, InitThrowingIsReportedAndContained) {
  ASSERT_TRUE(manager().install(fixture("io.novacron.test.init-throws")).has_value());
  expect_refused("io.novacron.test.init-throws", "init_failed", "test plugin refuses to initialise");
}

TEST_F(PluginManagerTest, StartFailingIsReported) {
  ASSERT_TRUE(manager().install(fixture("io.novacron.test.start-fails")).has_value());
  expect_refused("io.novacron.test.start-fails", "start_failed", "backend not reachable");
}

TEST_F(PluginManagerTest, BadPluginConfigIsReportedWithPath) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  PluginLoadSpec spec{kGood, std::nullopt, false, R"({"markr": "x"})", "/plugins/load/3/config"};
  auto r = manager().load(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "init_failed");
  EXPECT_NE(r.error().message.find("in its config section /plugins/load/3/config: /markr: unknown key"),
            std::string::npos)
      << r.error().message;
}

TEST_F(PluginManagerTest, RequiredPluginMissingStopsStartAll) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  std::vector<PluginLoadSpec> specs = {{kGood, std::nullopt, true, "{}"},
                                       {"io.novacron.test.absent", std::nullopt, false, "{}"},
                                       {"io.novacron.test.missing", std::nullopt, true, "{}"}};
  auto r = manager().start_all(specs);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "not_found");
  EXPECT_NE(r.error().message.find("required plugin io.novacron.test.missing"), std::string::npos) << r.error().message;
  EXPECT_EQ(manager().status("io.novacron.test.absent")->state, "failed");  // optional: skipped
  EXPECT_EQ(manager().status(kGood)->state, "running");
}

TEST_F(PluginManagerTest, CopiedInWithoutInstallIsRefused) {
  copy_fixture(kGood, dir_ / "plugins");
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "not_pinned");
  EXPECT_NE(r.error().message.find("novacron plugin install"), std::string::npos);
}

TEST_F(PluginManagerTest, BundledPluginIsPinnedOnFirstSightAndCheckedAfter) {
  TempDir bundled;
  bundled_dir_ = bundled.path();
  copy_fixture(kGood, bundled.path());
  ASSERT_TRUE(load(kGood).has_value());
  auto pin = catalog_->find(kGood, "1.0.0");
  ASSERT_TRUE(pin.has_value() && pin->has_value());
  EXPECT_EQ((*pin)->source, "bundled");
  EXPECT_EQ((*pin)->pinned_by, executable_build_id());
  manager().stop_all();
  manager_.reset();
  // Same host build, changed file: refused like any other.
  fs::path lib = library_of(bundled.path() / kGood / "1.0.0");
  std::string bytes = testing::read_file(lib);
  bytes.back() ^= 1;
  testing::replace_file(lib, bytes);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "sha256_mismatch");
}

TEST_F(PluginManagerTest, PluginCrashingWhileInspectedIsContained) {
  auto r = manager().install(fixture("io.novacron.test.ctor-crash"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "inspection_crashed");
  EXPECT_NE(r.error().message.find("SIGSEGV"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "plugins" / "io.novacron.test.ctor-crash"));
  expect_still_working();
}

TEST_F(PluginManagerTest, InstallRefusesIncompatiblePluginsBeforeCopying) {
  for (const char* id : {"io.novacron.test.sdk-major", "io.novacron.test.kind-mismatch", "io.novacron.test.no-entry"}) {
    auto r = manager().install(fixture(id));
    ASSERT_FALSE(r.has_value()) << id;
    EXPECT_FALSE(fs::exists(dir_ / "plugins" / id)) << id;
    auto pinned = catalog_->find(id, "1.0.0");
    EXPECT_FALSE(pinned->has_value()) << id;
  }
}

TEST_F(PluginManagerTest, CrashLoopMarkerQuarantinesThePlugin) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  // What a process that died in start() leaves behind (another pid than ours).
  {
    auto guard = BootGuard::open(dir_ / "plugin-guard");
    ASSERT_TRUE(guard.has_value());
    ASSERT_TRUE(guard->enter(kGood, "1.0.0", "start").has_value());
  }
  auto q = manager().recover_from_crash();
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->value_or(""), kGood);
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "quarantined");
  EXPECT_NE(r.error().message.find("novacron plugin enable io.novacron.test.good"), std::string::npos);
  EXPECT_FALSE(BootGuard::open(dir_ / "plugin-guard")->read()->has_value());
  // Re-enabling lifts the quarantine.
  auto e = manager().enable(kGood);
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(e->state, "running");
}

TEST_F(PluginManagerTest, DisableStopsTheInstanceAndEnableStartsANewOne) {
  ASSERT_TRUE(manager().install(fixture(kGood)).has_value());
  ASSERT_TRUE(load(kGood).has_value());
  ASSERT_TRUE(manager().disable(kGood).has_value());
  EXPECT_FALSE(manager().scheduling_policy(kGood));
  EXPECT_EQ(manager().status(kGood)->state, "disabled");
  EXPECT_EQ(catalog_->state(kGood)->state, PluginState::kDisabled);
  // Disabled survives a restart of the manager.
  manager().stop_all();
  manager_.reset();
  auto r = load(kGood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "disabled");
  auto e = manager().enable(kGood);
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_TRUE(manager().scheduling_policy(kGood));
}

// Ed25519 key pair written as PEM files.
void make_keypair(const fs::path& priv, const fs::path& pub) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  FILE* f = std::fopen(priv.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  f = std::fopen(pub.c_str(), "w");
  PEM_write_PUBKEY(f, key);
  std::fclose(f);
  EVP_PKEY_free(key);
}

class SignedPluginTest : public PluginManagerTest {
 protected:
  void SetUp() override {
    PluginManagerTest::SetUp();
    make_keypair(dir_ / "trusted.pem", dir_ / "trusted.pub");
    make_keypair(dir_ / "stranger.pem", dir_ / "stranger.pub");
    keys_ = *TrustedKeys::load({dir_ / "trusted.pub"});
    require_signatures_ = true;
    package_ = dir_ / "package";
    fs::create_directories(package_);
    for (const auto& e : fs::directory_iterator(fixture(kGood)))
      fs::copy_file(e.path(), package_ / e.path().filename());
  }
  void sign_with(const fs::path& key) {
    auto m = parse_manifest(testing::read_file(package_ / "plugin.json"), "plugin.json");
    auto sig = sign_with_key_file(key, plugin_signature_message(m->id, m->version, m->sha256));
    ASSERT_TRUE(sig.has_value()) << sig.error().message;
    testing::write_file(package_ / (m->library + ".sig"), *sig);
  }
  fs::path package_;
};

TEST_F(SignedPluginTest, ValidSignatureFromTrustedKeyLoads) {
  sign_with(dir_ / "trusted.pem");
  auto r = manager().install(package_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto st = load(kGood);
  ASSERT_TRUE(st.has_value()) << st.error().message;
}

TEST_F(SignedPluginTest, SignatureFromUnknownKeyIsRefused) {
  sign_with(dir_ / "stranger.pem");
  auto r = manager().install(package_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "signature_invalid");
}

TEST_F(SignedPluginTest, MissingSignatureIsRefusedWhenRequired) {
  auto r = manager().install(package_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "signature_missing");
}

TEST_F(SignedPluginTest, SignatureRemovedAfterInstallIsRefusedAtLoad) {
  sign_with(dir_ / "trusted.pem");
  ASSERT_TRUE(manager().install(package_).has_value());
  fs::path sig = library_of(dir_ / "plugins" / kGood / "1.0.0").string() + ".sig";
  fs::remove(sig);
  auto st = load(kGood);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, "signature_missing");
}

TEST_F(PluginManagerTest, InstallsFromTarZstArchive) {
  fs::path pkg = dir_ / "good.tar.zst";
  testing::write_archive(pkg, testing::entries_of_folder(fixture(kGood), "1.0.0"));
  auto r = manager().install(pkg);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(load(kGood).has_value());
  // Nothing left behind in the staging dir.
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(PluginManagerTest, CompanionFilesAreInstalledWithTheLibrary) {
  // A helper executable and a data file beside the library (as the lxc driver ships its
  // helper); a symlink is not followed.
  auto entries = testing::entries_of_folder(fixture(kGood), "1.0.0");
  entries.push_back({"1.0.0/plugin-helper", testing::ArchiveEntry::Type::kFile, "#!/bin/true\n", "", 0755});
  entries.push_back({"1.0.0/defaults.json", testing::ArchiveEntry::Type::kFile, "{}", "", 0644});
  fs::path pkg = dir_ / "with-helper.tar.zst";
  testing::write_archive(pkg, entries);
  auto r = manager().install(pkg);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  fs::path installed = dir_ / "plugins" / kGood / "1.0.0";
  ASSERT_TRUE(fs::is_regular_file(installed / "plugin-helper"));
  EXPECT_EQ(fs::status(installed / "plugin-helper").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_EQ(testing::read_file(installed / "defaults.json"), "{}");
  EXPECT_EQ(fs::status(installed / "defaults.json").permissions() & fs::perms::all, fs::perms(0644));
  EXPECT_TRUE(load(kGood).has_value()) << "companions do not disturb the library's pins";
}

TEST_F(PluginManagerTest, ArchiveWithParentDirEntriesIsRefused) {
  fs::path pkg = dir_ / "evil.tar.zst";
  auto entries = testing::entries_of_folder(fixture(kGood), "1.0.0");
  entries.push_back({"1.0.0/../../../escaped", testing::ArchiveEntry::Type::kFile, "pwned", "", 0644});
  testing::write_archive(pkg, entries);
  auto r = manager().install(pkg);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "archive_unsafe");
  EXPECT_NE(r.error().message.find(".."), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_.path().parent_path() / "escaped"));
  EXPECT_FALSE(fs::exists(dir_ / "plugins" / kGood));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

}  // namespace
}  // namespace novacron

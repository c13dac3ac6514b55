#include "host/plugins/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "host/plugins/descriptor_check.h"
#include "novacron/sdk/version.hpp"

namespace novacron {
namespace {

const char* kValid = R"({"id": "io.novacron.x", "version": "1.2.3", "kind": "scheduling_policy",
  "sdk_version": "1.0.0", "library": "libx.so", "description": "d", "license": "MIT",
  "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "config_keys": []})";

TEST(ManifestTest, ParsesValidManifest) {
  auto m = parse_manifest(kValid, "plugin.json");
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->id, "io.novacron.x");
  EXPECT_EQ(m->library, "libx.so");
  EXPECT_EQ(kind_from_name(m->kind), NOVACRON_KIND_SCHEDULING_POLICY);
}

TEST(ManifestTest, RefusesBadFieldsNamingThem) {
  auto with = [](const std::string& key, const std::string& value) {
    auto j = nlohmann::json::parse(kValid);
    j[key] = nlohmann::json::parse(value);
    return parse_manifest(j.dump(), "x/plugin.json");
  };
  struct Case {
    const char* key;
    const char* value;
    const char* expect;
  } cases[] = {{"library", R"("../../etc/passwd.so")", "/library"},
               {"library", R"("libx.dylib")", "/library"},
               {"kind", R"("toaster")", "unknown plugin kind"},
               {"id", R"("NoDots")", "/id"},
               {"version", R"("1.2")", "/version"},
               {"sha256", R"("abc")", "/sha256"},
               {"id", "42", "/id: expected a string"}};
  for (const auto& c : cases) {
    auto m = with(c.key, c.value);
    ASSERT_FALSE(m.has_value()) << c.key << "=" << c.value;
    EXPECT_NE(m.error().message.find(c.expect), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find("x/plugin.json"), std::string::npos);
  }
  EXPECT_FALSE(parse_manifest("{not json", "p").has_value());
  EXPECT_FALSE(parse_manifest(std::string(300 * 1024, ' '), "p").has_value());
}

TEST(ManifestTest, ComparesSemanticVersions) {
  EXPECT_LT(compare_versions("1.2.3", "1.10.0"), 0);
  EXPECT_GT(compare_versions("2.0.0", "1.99.99"), 0);
  EXPECT_EQ(compare_versions("1.0.0", "1.0.0"), 0);
  EXPECT_GT(compare_versions("1.0.0", "1.0.0-rc1"), 0);
  EXPECT_LT(compare_versions("1.0.0-rc1", "1.0.0-rc2"), 0);
}

DescriptorInfo compatible() {
  DescriptorInfo d;
  d.sdk_major = NOVACRON_SDK_VERSION_MAJOR;
  d.sdk_minor = NOVACRON_SDK_VERSION_MINOR;
  d.kind = NOVACRON_KIND_SCHEDULING_POLICY;
  d.interface_version = 1;
  d.toolchain = sdk::current_toolchain();
  return d;
}

TEST(DescriptorCheckTest, CompatibilityRule) {
  const auto host = sdk::current_toolchain();
  EXPECT_TRUE(check_compatibility(compatible(), host).has_value());

  auto d = compatible();
  d.sdk_major = 0;
  EXPECT_EQ(check_compatibility(d, host).error().code, "sdk_major_mismatch");
  d = compatible();
  d.sdk_minor = NOVACRON_SDK_VERSION_MINOR + 1;
  EXPECT_EQ(check_compatibility(d, host).error().code, "sdk_minor_too_new");
  d = compatible();
  d.toolchain.stdlib_release = host.stdlib_release + 1;  // needs a newer libstdc++ than ours
  EXPECT_EQ(check_compatibility(d, host).error().code, "toolchain_incompatible");
  d = compatible();
  d.toolchain.compiler_family = NOVACRON_COMPILER_CLANG;  // clang with libstdc++: fine
  d.toolchain.compiler_major = 14;
  EXPECT_TRUE(check_compatibility(d, host).has_value());
  d = compatible();
  d.kind = NOVACRON_KIND_STORAGE_BACKEND;  // reserved, not in this SDK yet
  EXPECT_EQ(check_compatibility(d, host).error().code, "kind_unsupported");
  d = compatible();
  d.interface_version = 0;
  EXPECT_EQ(check_compatibility(d, host).error().code, "descriptor_invalid");
}

TEST(DescriptorCheckTest, ReadDescriptorRejectsGarbage) {
  EXPECT_EQ(read_descriptor(nullptr).error().code, "descriptor_invalid");
  NovacronPluginDescriptor d{};
  EXPECT_NE(read_descriptor(&d).error().message.find("magic"), std::string::npos);
  d.magic = NOVACRON_PLUGIN_MAGIC;
  d.size = 8;
  EXPECT_NE(read_descriptor(&d).error().message.find("smaller"), std::string::npos);
  d.size = sizeof d;
  d.id = "io.novacron.x";
  d.version = "not-a-version";
  EXPECT_NE(read_descriptor(&d).error().message.find("version"), std::string::npos);
}

}  // namespace
}  // namespace novacron

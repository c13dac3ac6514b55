#include "host/common/path_beneath.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class PathBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root() / "images/base");
    testing::write_file(root() / "images/base/disk.qcow2", "disk");
    testing::write_file(dir_ / "secret", "outside");
    fs::create_symlink("base/disk.qcow2", root() / "images/inside-link");       // stays inside
    fs::create_symlink(dir_ / "secret", root() / "images/absolute-out");        // points outside
    fs::create_symlink("../../secret", root() / "images/relative-out");         // climbs out
    fs::create_directory_symlink(dir_.path(), root() / "images/dir-out");       // folder outside
    fs::create_symlink("/proc/self/root/etc/passwd", root() / "images/magic");  // magic link
  }
  fs::path root() const { return dir_ / "root"; }

  std::string read(std::string_view client_path, bool follow = true) {
    BeneathOptions o;
    o.follow_symlinks_inside = follow;
    auto fd = open_beneath(root(), client_path, o);
    if (!fd) return "error:" + fd.error().code;
    char buf[64] = {};
    ssize_t n = ::read(fd->get(), buf, sizeof buf - 1);
    return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  }

  TempDir dir_;
};

TEST_F(PathBeneathTest, OpensFilesBeneathTheRoot) {
  EXPECT_EQ(read("images/base/disk.qcow2"), "disk");
  EXPECT_EQ(read("./images//base/disk.qcow2"), "disk");
  EXPECT_EQ(read("images/inside-link"), "disk");  // a symlink that stays inside is fine
  auto resolved = resolve_beneath(root(), "images/inside-link");
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(*resolved, fs::canonical(root() / "images/base/disk.qcow2"));
}

TEST_F(PathBeneathTest, RefusesEscapes) {
  EXPECT_EQ(read("../secret"), "error:path_escapes_root");
  EXPECT_EQ(read("images/../../secret"), "error:path_escapes_root");
  EXPECT_EQ(read("images/base/../disk"), "error:path_escapes_root");  // ".." refused even inside
  EXPECT_EQ(read("/etc/passwd"), "error:path_escapes_root");
  EXPECT_EQ(read("images/absolute-out"), "error:path_escapes_root");
  EXPECT_EQ(read("images/relative-out"), "error:path_escapes_root");
  EXPECT_EQ(read("images/dir-out/secret"), "error:path_escapes_root");
  EXPECT_NE(read("images/magic").rfind("error:", 0), std::string::npos);
  EXPECT_EQ(read("images/inside-link", /*follow=*/false), "error:symlink");
}

TEST_F(PathBeneathTest, ErrorsSayWhatAndWhere) {
  auto r = open_beneath(root(), "images/relative-out");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("images/relative-out"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(root().string()), std::string::npos) << r.error().message;
  auto missing = open_beneath(root(), "images/none.raw");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_EQ(open_beneath(root(), "").error().code, "path_invalid");
  EXPECT_EQ(open_beneath(root(), std::string("a\0b", 3)).error().code, "path_invalid");
  EXPECT_EQ(open_beneath(root(), std::string(5000, 'a')).error().code, "path_invalid");
}

TEST_F(PathBeneathTest, CreatesNewFilesOnlyBeneathTheRoot) {
  BeneathOptions o;
  o.flags = O_WRONLY | O_CREAT | O_EXCL;
  auto fd = open_beneath(root(), "images/new.raw", o);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(fs::exists(root() / "images/new.raw"));
  EXPECT_FALSE(open_beneath(root(), "images/dir-out/planted", o).has_value());
  EXPECT_FALSE(fs::exists(dir_ / "planted"));
}

TEST_F(PathBeneathTest, FallbackWithoutOpenat2RefusesEverySymlink) {
  auto ok = internal::open_beneath_without_openat2(root(), "images/base/disk.qcow2");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  for (const char* p : {"images/inside-link", "images/absolute-out", "images/dir-out/secret"}) {
    auto r = internal::open_beneath_without_openat2(root(), p);
    ASSERT_FALSE(r.has_value()) << p;
    EXPECT_EQ(r.error().code, "symlink") << p << ": " << r.error().message;
  }
  EXPECT_EQ(internal::open_beneath_without_openat2(root(), "../secret").error().code, "path_escapes_root");
  // O_PATH with O_NOFOLLOW would open the link itself: still refused.
  auto as_path = internal::open_beneath_without_openat2(root(), "images/absolute-out", O_PATH);
  ASSERT_FALSE(as_path.has_value());
  EXPECT_EQ(as_path.error().code, "symlink");
  // A regular file used as a folder is not reported as a symlink.
  auto not_dir = internal::open_beneath_without_openat2(root(), "images/base/disk.qcow2/x");
  ASSERT_FALSE(not_dir.has_value());
  EXPECT_EQ(not_dir.error().code, "io");
}

}  // namespace
}  // namespace novacron

// Path safety (design 7.4), ported from tests/host/common/path_beneath_test.cc: the text
// checks, opening beneath a root, every symlink refused (inside or out, as the last component
// or a folder on the way), creating missing folders with their mode, and the walk used where
// openat2 is missing. Every test also checks that nothing appeared outside the root.
#include "safe_path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace novacron::transport {
namespace {

namespace fs = std::filesystem;

std::string code_of(const std::optional<PathError>& e) { return e ? e->code : "ok"; }

template <typename T>
std::string code_of(const PathResult<T>& r) {
  return r ? "ok" : r.error().code;
}

void write_file(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_all(int fd) {
  char buf[64] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

// Everything beneath `dir`, symlinks not followed.
std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) names.insert(fs::relative(e.path(), dir).string());
  return names;
}

// Sets the umask for one scope, so that created modes are predictable.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

class SafePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "safe_path_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    fs::create_directories(root() / "images/base");
    fs::create_directories(outside());
    write_file(root() / "images/base/disk.qcow2", "disk");
    write_file(outside() / "secret", "outside");
    fs::create_symlink("base/disk.qcow2", root() / "images/inside-link");          // stays inside
    fs::create_symlink(outside() / "secret", root() / "images/absolute-out");      // points outside
    fs::create_symlink("../../outside/secret", root() / "images/relative-out");    // climbs out
    fs::create_directory_symlink(outside(), root() / "images/dir-out");            // folder outside
    fs::create_directory_symlink("../../outside", root() / "images/rel-dir-out");  // folder, climbing
    fs::create_directory_symlink("base", root() / "images/dir-in");                // folder inside
    fs::create_symlink("/proc/self/root/etc/passwd", root() / "images/magic");     // magic link
    ASSERT_EQ(::mkfifo((root() / "images/fifo").c_str(), 0600), 0);
    auto fd = open_root(root().string());
    ASSERT_TRUE(fd) << fd.error().message;
    root_fd_ = std::move(*fd);
    outside_before_ = listing(base_);
  }

  void TearDown() override {
    // Whatever the test did, nothing may have appeared outside the root.
    std::set<std::string> now = listing(base_);
    std::erase_if(now, [](const std::string& n) { return n.rfind("root/", 0) == 0; });
    std::erase_if(outside_before_, [](const std::string& n) { return n.rfind("root/", 0) == 0; });
    EXPECT_EQ(now, outside_before_);
    root_fd_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  fs::path root() const { return base_ / "root"; }
  fs::path outside() const { return base_ / "outside"; }

  std::string read(std::string_view rel) {
    auto fd = open_file_beneath(root_fd_.get(), rel, O_RDONLY);
    return fd ? read_all(fd->get()) : "error:" + fd.error().code;
  }

  fs::path base_;
  Fd root_fd_;
  std::set<std::string> outside_before_;
};

TEST(SafePathTextTest, AcceptsPlainRelativePaths) {
  for (const char* p : {"a", "images/base/disk.qcow2", ".hidden", "a/..b", "...", "a/b.", "a b/c"}) {
    EXPECT_EQ(code_of(check_relative_path(p)), "ok") << p;
  }
  EXPECT_EQ(code_of(check_relative_path(std::string(255, 'a'))), "ok");
  std::string long_path;
  while (long_path.size() + 101 <= 4096) long_path += std::string(100, 'a') + "/";
  long_path += std::string(4096 - long_path.size(), 'b');
  ASSERT_EQ(long_path.size(), 4096u);
  EXPECT_EQ(code_of(check_relative_path(long_path)), "ok");
}

TEST(SafePathTextTest, RefusesBadTexts) {
  EXPECT_EQ(code_of(check_relative_path("")), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path("/etc/passwd")), "path_escapes_root");
  EXPECT_EQ(code_of(check_relative_path("..")), "path_escapes_root");
  EXPECT_EQ(code_of(check_relative_path("../secret")), "path_escapes_root");
  EXPECT_EQ(code_of(check_relative_path("images/../../secret")), "path_escapes_root");
  EXPECT_EQ(code_of(check_relative_path("images/base/..")), "path_escapes_root");
  EXPECT_EQ(code_of(check_relative_path(".")), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path("./images")), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path("images//base")), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path("images/")), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path(std::string("a\0b", 3))), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path("a/" + std::string(256, 'x'))), "path_invalid");
  EXPECT_EQ(code_of(check_relative_path(std::string(4097, 'a'))), "path_invalid");
  auto e = check_relative_path("x/../y");
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("x/../y"), std::string::npos) << e->message;
  // A control byte from a peer does not reach the log as is.
  auto nul = check_relative_path(std::string("a\0b\n", 4));
  ASSERT_TRUE(nul);
  EXPECT_EQ(nul->message.find('\n'), std::string::npos) << nul->message;
}

TEST(SafePathTextTest, SplitParent) {
  auto one = split_parent("disk.raw");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->dir, "");
  EXPECT_EQ(one->name, "disk.raw");
  auto deep = split_parent("vms/web/disk.raw");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->dir, "vms/web");
  EXPECT_EQ(deep->name, "disk.raw");
  EXPECT_FALSE(split_parent("vms/"));
  EXPECT_FALSE(split_parent("../disk.raw"));
  EXPECT_FALSE(split_parent(""));
}

TEST_F(SafePathTest, OpenRoot) {
  EXPECT_EQ(code_of(open_root("relative/root")), "path_invalid");
  EXPECT_EQ(code_of(open_root("")), "path_invalid");
  EXPECT_EQ(code_of(open_root((base_ / "none").string())), "not_found");
  EXPECT_EQ(code_of(open_root((outside() / "secret").string())), "io");  // not a folder
}

TEST_F(SafePathTest, OpensFilesAndFoldersBeneathTheRoot) {
  EXPECT_EQ(read("images/base/disk.qcow2"), "disk");
  auto dir = open_dir_beneath(root_fd_.get(), "images/base", /*create_missing=*/false);
  ASSERT_TRUE(dir) << dir.error().message;
  auto file = open_file_beneath(dir->get(), "disk.qcow2", O_RDONLY);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(read_all(file->get()), "disk");
  // "" is the root itself, as a new fd.
  auto self = open_dir_beneath(root_fd_.get(), "", false);
  ASSERT_TRUE(self);
  EXPECT_NE(self->get(), root_fd_.get());
  struct stat a {};
  struct stat b {};
  ASSERT_EQ(::fstat(self->get(), &a), 0);
  ASSERT_EQ(::stat(root().c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  // The returned fd is a file that can be read without O_NONBLOCK surprises.
  EXPECT_EQ(::fcntl(file->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(SafePathTest, RefusesEverySymlinkAndEscape) {
  EXPECT_EQ(read("../outside/secret"), "error:path_escapes_root");
  EXPECT_EQ(read("/etc/passwd"), "error:path_escapes_root");
  EXPECT_EQ(read("images/inside-link"), "error:symlink");  // even one that stays inside
  EXPECT_EQ(read("images/absolute-out"), "error:symlink");
  EXPECT_EQ(read("images/relative-out"), "error:symlink");
  EXPECT_EQ(read("images/dir-out/secret"), "error:symlink");
  EXPECT_EQ(read("images/rel-dir-out/secret"), "error:symlink");
  EXPECT_EQ(read("images/dir-in/disk.qcow2"), "error:symlink");
  EXPECT_EQ(read("images/magic"), "error:symlink");
  for (const char* d : {"images/dir-out", "images/rel-dir-out", "images/dir-in", "images/inside-link"}) {
    EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), d, false)), "symlink") << d;
  }
  // O_PATH with O_NOFOLLOW would open the link itself: still refused.
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/absolute-out", O_PATH)), "symlink");
}

TEST_F(SafePathTest, RefusesWhatIsNotARegularFile) {
  EXPECT_EQ(read("images/base"), "error:path_invalid");
  EXPECT_EQ(read("images/fifo"), "error:path_invalid");  // and does not block opening it
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/base", O_WRONLY)), "path_invalid");
  // A file used as a folder is an I/O error, not a symlink.
  EXPECT_EQ(read("images/base/disk.qcow2/x"), "error:io");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/base/disk.qcow2", false)), "io");
}

TEST_F(SafePathTest, ErrorsSayWhatAndWhere) {
  auto r = open_file_beneath(root_fd_.get(), "images/relative-out", O_RDONLY);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("images/relative-out"), std::string::npos) << r.error().message;
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/none.raw", O_RDONLY)), "not_found");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "nowhere/none.raw", O_RDONLY)), "not_found");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/none", false)), "not_found");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "", O_RDONLY)), "path_invalid");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), std::string("a\0b", 3), O_RDONLY)), "path_invalid");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), std::string(5000, 'a'), O_RDONLY)), "path_invalid");
  EXPECT_FALSE(fs::exists(root() / "nowhere")) << "nothing created without create_missing";
}

TEST_F(SafePathTest, CreatesNewFilesOnlyBeneathTheRoot) {
  ScopedUmask mask(022);
  auto fd = open_file_beneath(root_fd_.get(), "images/new.raw", O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_TRUE(fd) << fd.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((root() / "images/new.raw").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/new.raw", O_WRONLY | O_CREAT | O_EXCL)), "io");
  const int create = O_WRONLY | O_CREAT;
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/dir-out/planted", create)), "symlink");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/rel-dir-out/planted", create)), "symlink");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "images/absolute-out", create | O_TRUNC)), "symlink");
  EXPECT_EQ(code_of(open_file_beneath(root_fd_.get(), "../planted", create)), "path_escapes_root");
  std::ifstream secret(outside() / "secret");
  std::string text((std::istreambuf_iterator<char>(secret)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "outside") << "not truncated through the link";
}

TEST_F(SafePathTest, CreateMissingMakesFoldersWithTheMode) {
  ScopedUmask mask(022);
  auto dir = open_dir_beneath(root_fd_.get(), "vms/web/disks", /*create_missing=*/true, 0750);
  ASSERT_TRUE(dir) << dir.error().message;
  for (const char* d : {"vms", "vms/web", "vms/web/disks"}) {
    struct stat st {};
    ASSERT_EQ(::lstat((root() / d).c_str(), &st), 0) << d;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
    EXPECT_EQ(st.st_mode & 07777, 0750u) << d;
  }
  struct stat got {};
  struct stat want {};
  ASSERT_EQ(::fstat(dir->get(), &got), 0);
  ASSERT_EQ(::stat((root() / "vms/web/disks").c_str(), &want), 0);
  EXPECT_EQ(got.st_ino, want.st_ino) << "the fd is the deepest folder";
  // An O_PATH folder fd serves as the dirfd of later *at calls.
  auto file = open_file_beneath(dir->get(), "disk.raw", O_WRONLY | O_CREAT | O_EXCL);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_TRUE(fs::exists(root() / "vms/web/disks/disk.raw"));
  // Existing prefixes are reused; existing folders keep their mode.
  auto again = open_dir_beneath(root_fd_.get(), "images/base/new", true, 0700);
  ASSERT_TRUE(again) << again.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((root() / "images/base/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(open_dir_beneath(root_fd_.get(), "vms/web", true));
}

TEST_F(SafePathTest, CreateMissingRefusesToCreateThroughASymlink) {
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/dir-out/x/y", true)), "symlink");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/rel-dir-out/x", true)), "symlink");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/dir-in/x", true)), "symlink");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/inside-link/x", true)), "symlink");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/base/disk.qcow2/x", true)), "io");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "images/../escaped", true)), "path_escapes_root");
  EXPECT_EQ(code_of(open_dir_beneath(root_fd_.get(), "/tmp/escaped", true)), "path_escapes_root");
  EXPECT_FALSE(fs::exists(base_ / "escaped"));
  EXPECT_FALSE(fs::exists(root() / "images/base/x"));
}

TEST_F(SafePathTest, WalkWithoutOpenat2RefusesEverySymlink) {
  auto ok = internal::open_dir_beneath_by_walk(root_fd_.get(), "images/base", false);
  ASSERT_TRUE(ok) << ok.error().message;
  auto file = open_file_beneath(ok->get(), "disk.qcow2", O_RDONLY);
  ASSERT_TRUE(file);
  EXPECT_EQ(read_all(file->get()), "disk");
  EXPECT_TRUE(internal::open_dir_beneath_by_walk(root_fd_.get(), "", false));
  for (const char* d : {"images/dir-out", "images/rel-dir-out", "images/dir-in", "images/inside-link", "images/magic",
                        "images/dir-out/x"}) {
    EXPECT_EQ(code_of(internal::open_dir_beneath_by_walk(root_fd_.get(), d, false)), "symlink") << d;
    EXPECT_EQ(code_of(internal::open_dir_beneath_by_walk(root_fd_.get(), d, true)), "symlink") << d;
  }
  EXPECT_EQ(code_of(internal::open_dir_beneath_by_walk(root_fd_.get(), "../outside", true)), "path_escapes_root");
  EXPECT_EQ(code_of(internal::open_dir_beneath_by_walk(root_fd_.get(), "images/none", false)), "not_found");
  EXPECT_EQ(code_of(internal::open_dir_beneath_by_walk(root_fd_.get(), "images/base/disk.qcow2", false)), "io");
  ScopedUmask mask(022);
  auto made = internal::open_dir_beneath_by_walk(root_fd_.get(), "walked/a/b", true, 0750);
  ASSERT_TRUE(made) << made.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((root() / "walked/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(SafePathTest, FdIsMoveOnlyAndCloses) {
  int raw = ::open(root().c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  Fd a(raw);
  Fd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), raw);
  b.reset();
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "closed";
  Fd c(::open(root().c_str(), O_PATH | O_CLOEXEC));
  int kept = c.release();
  EXPECT_FALSE(c.valid());
  EXPECT_GE(::fcntl(kept, F_GETFD), 0) << "release does not close";
  ::close(kept);
}

}  // namespace
}  // namespace novacron::transport

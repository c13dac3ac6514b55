// Directory-tree transfers between two transport nodes on loopback (real TLS, real files,
// owners, xattrs, device nodes; the tests run as root in CI and skip what needs root
// otherwise), and the tree frames' decoding of hostile input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>

#include "transport_pair_fixture.h"
#include "tree_frames.h"

namespace novacron::transport {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the fixture's helpers

// What a tree looks like, by relative path: type, metadata, content, link target, xattrs.
struct Seen {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::int64_t mtime_ns = 0;
  off_t size = 0;
  dev_t rdev = 0;
  ino_t ino = 0;
  std::string link;
  std::vector<std::uint8_t> content;
  std::map<std::string, std::string> xattrs;
};

std::map<std::string, std::string> xattrs_of(const fs::path& p) {
  std::map<std::string, std::string> out;
  char names[4096];
  const ssize_t n = ::llistxattr(p.c_str(), names, sizeof names);
  for (ssize_t at = 0; at < n;) {
    const std::string name(names + at);
    at += static_cast<ssize_t>(name.size()) + 1;
    char value[4096];
    const ssize_t len = ::lgetxattr(p.c_str(), name.c_str(), value, sizeof value);
    if (len >= 0) out[name] = std::string(value, static_cast<size_t>(len));
  }
  return out;
}

std::map<std::string, Seen> snapshot(const fs::path& root) {
  std::map<std::string, Seen> out;
  auto add = [&](const fs::path& p, const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    Seen s;
    s.mode = st.st_mode;
    s.uid = st.st_uid;
    s.gid = st.st_gid;
    s.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
    s.rdev = st.st_rdev;
    s.ino = st.st_ino;
    if (S_ISREG(st.st_mode)) {
      s.size = st.st_size;
      s.content = read_bytes(p);
    }
    if (S_ISLNK(st.st_mode)) s.link = fs::read_symlink(p).string();
    s.xattrs = xattrs_of(p);
    out[rel] = s;
  };
  add(root, ".");
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    add(e.path(), e.path().lexically_relative(root).string());
  }
  return out;
}

void set_mtime(const fs::path& p, std::int64_t sec, long nsec) {
  const timespec times[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << p;
}

class TreeTest : public TransportPairTest {
 protected:
  sdk::TransferStatus send_tree(const std::string& id, const fs::path& source, const std::string& target,
                                int compression = 1) {
    sdk::SendRequest r;
    r.id = id;
    r.kind = sdk::TransferKind::kDirectory;
    r.source = source.string();
    r.peer = "node-b";
    r.target = target;
    r.compression = compression;
    auto started = a_->send(r);
    EXPECT_TRUE(started.is_ok()) << started.status().message();
    auto done = a_->wait(id, std::chrono::seconds(120));
    EXPECT_TRUE(done.is_ok());
    return done.value();
  }

  // A rootfs-like tree: nested folders, text and random files, a sparse file, an empty file,
  // duplicates, hard links, absolute and dangling symlinks, a FIFO, a socket-free device node
  // and owners, setuid bits and xattrs (root only), nanosecond times.
  fs::path make_tree() {
    const fs::path t = a_file("rootfs");
    fs::create_directories(t / "etc" / "conf.d");
    fs::create_directories(t / "usr" / "bin");
    fs::create_directories(t / "var" / "empty");
    write_bytes(t / "etc" / "hosts", {'1', '2', '7', '.', '0', '.', '0', '.', '1', '\n'});
    write_bytes(t / "etc" / "conf.d" / "big.conf", mixed_data(3u << 20, 31));
    write_bytes(t / "usr" / "bin" / "tool", random_data(600 * 1024, 32));
    write_bytes(t / "usr" / "bin" / "tool-copy", random_data(600 * 1024, 32));  // dedup across files
    write_bytes(t / "empty", {});
    write_bytes(t / "etc" / "motd", mixed_data(5000, 34));  // files of odd sizes: blocks add up per file
    write_bytes(t / "usr" / "bin" / "script", mixed_data(12345, 35));
    {
      const int fd = ::open((t / "sparse.img").c_str(), O_WRONLY | O_CREAT, 0644);
      EXPECT_EQ(::ftruncate(fd, 64 << 20), 0);
      const auto mid = random_data(kBlock, 33);
      EXPECT_EQ(::pwrite(fd, mid.data(), mid.size(), 32 << 20), static_cast<ssize_t>(kBlock));
      ::close(fd);
    }
    fs::create_hard_link(t / "usr" / "bin" / "tool", t / "usr" / "bin" / "tool-hardlink");
    fs::create_symlink("/etc/passwd", t / "etc" / "abs-link");
    fs::create_symlink("../nowhere/at/all", t / "etc" / "dangling");
    EXPECT_EQ(::mkfifo((t / "var" / "fifo").c_str(), 0620), 0);
    ::chmod((t / "etc").c_str(), 0750);
    ::chmod((t / "usr" / "bin" / "tool").c_str(), 0755);
    EXPECT_EQ(::setxattr((t / "etc" / "hosts").c_str(), "user.novacron.role", "config", 6, 0), 0);
    EXPECT_EQ(::setxattr((t / "etc").c_str(), "user.novacron.dir", "yes", 3, 0), 0);
    if (::geteuid() == 0) {
      EXPECT_EQ(::mknod((t / "var" / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
      EXPECT_EQ(::lchown((t / "usr" / "bin" / "tool").c_str(), 1234, 2345), 0);
      ::chmod((t / "usr" / "bin" / "tool").c_str(), 04755);  // setuid after the chown that clears it
      EXPECT_EQ(::lchown((t / "etc" / "abs-link").c_str(), 1234, 2345), 0);
      EXPECT_EQ(::setxattr((t / "etc" / "hosts").c_str(), "trusted.novacron", "t", 1, 0), 0);
    }
    set_mtime(t / "etc" / "hosts", 1700000000, 123456789);
    set_mtime(t / "etc" / "abs-link", 1600000000, 5);
    set_mtime(t / "etc", 1650000000, 42);
    set_mtime(t, 1660000000, 7);
    return t;
  }
};

TEST_F(TreeTest, RoundTripKeepsEverything) {
  start_pair();
  const fs::path src = make_tree();
  const auto before = snapshot(src);
  const auto st = send_tree("tree-1", src, "containers/ct1/rootfs");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_EQ(received("tree-1").digest, st.digest);
  const fs::path dst = b_root() / "containers" / "ct1" / "rootfs";
  const auto after = snapshot(dst);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [path, want] : before) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(after.contains(path));
    const Seen& got = after.at(path);
    EXPECT_EQ(got.mode, want.mode);
    EXPECT_EQ(got.uid, want.uid);
    EXPECT_EQ(got.gid, want.gid);
    EXPECT_EQ(got.rdev, want.rdev);
    EXPECT_EQ(got.link, want.link);
    EXPECT_EQ(got.xattrs, want.xattrs);
    EXPECT_EQ(got.content, want.content);
    // A folder's time is set after everything in it was written.
    if (!S_ISLNK(want.mode) || ::geteuid() == 0) EXPECT_EQ(got.mtime_ns, want.mtime_ns);
  }
  // Hard links stay one inode; the sparse file stays sparse; duplicates were sent once.
  EXPECT_EQ(after.at("usr/bin/tool").ino, after.at("usr/bin/tool-hardlink").ino);
  struct stat sparse {};
  ASSERT_EQ(::stat((dst / "sparse.img").c_str(), &sparse), 0);
  EXPECT_LT(sparse.st_blocks * 512, 1 << 20);
  EXPECT_GE(st.stats.blocks_dedup, 150);
  EXPECT_GT(st.stats.blocks_zero, 16000);
  EXPECT_EQ(temp_files_under(b_root()), 0);
  EXPECT_FALSE(fs::exists(b_root() / "containers" / "ct1" / ".rootfs.ncprev-tree-1"));
}

TEST_F(TreeTest, SecondRunSendsOnlyWhatChanged) {
  start_pair();
  const fs::path src = make_tree();
  ASSERT_EQ(send_tree("tree-a", src, "ct/rootfs").state, TransferState::kSucceeded);
  const ino_t kept_ino = fs::exists(b_root() / "ct/rootfs/etc/conf.d/big.conf")
                             ? snapshot(b_root() / "ct/rootfs").at("etc/conf.d/big.conf").ino
                             : 0;
  // One file changed, one added, one removed.
  auto changed = read_bytes(src / "usr" / "bin" / "tool-copy");
  changed[100] ^= 0xFF;
  write_bytes(src / "usr" / "bin" / "tool-copy", changed);
  write_bytes(src / "etc" / "new-file", mixed_data(8192, 40));
  fs::remove(src / "etc" / "dangling");
  const auto st = send_tree("tree-b", src, "ct/rootfs");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  const auto after = snapshot(b_root() / "ct/rootfs");
  EXPECT_EQ(after.at("usr/bin/tool-copy").content, changed);
  EXPECT_TRUE(after.contains("etc/new-file"));
  EXPECT_FALSE(after.contains("etc/dangling"));
  // Only the changed and the new file went over: 600 KiB + 8 KiB of literal bytes at most
  // (the rest was recognised by size, time, mode, owner and xattrs and linked, not copied).
  EXPECT_LE(st.stats.literal_raw_bytes, 620 * 1024);
  EXPECT_GT(st.stats.blocks_delta, 700);
  EXPECT_EQ(after.at("etc/conf.d/big.conf").ino, kept_ino);
  EXPECT_EQ(temp_files_under(b_root()), 0);
}

TEST_F(TreeTest, ResumeAfterCutSendsOnlyUnfinishedFiles) {
  std::unique_ptr<FaultProxy> proxy;
  const std::int64_t cut = 16 << 20;
  start_pair([&](const std::string& b_address) {
    std::string host;
    std::uint16_t port = 0;
    split_host_port(b_address, host, port);
    proxy = std::make_unique<FaultProxy>(host, port, FaultProxy::Faults{cut, -1});
    return proxy->address();
  });
  const fs::path src = a_file("images");
  fs::create_directories(src);
  for (int i = 0; i < 16; ++i) write_bytes(src / ("part-" + std::to_string(i)), random_data(2u << 20, 50 + i));
  const auto st = send_tree("tree-resume", src, "images", 0);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_TRUE(proxy->faulted());
  EXPECT_GE(st.stats.attempts, 2);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(read_bytes(b_root() / "images" / ("part-" + std::to_string(i))), random_data(2u << 20, 50 + i));
  }
  // Files finished before the cut were kept from the first attempt (at least 8 MiB of the 16
  // MiB that crossed; the rest was in flight), and the retry did not send them again.
  EXPECT_GE(received("tree-resume").stats.blocks_resumed, 2048);
  EXPECT_LE(st.stats.literal_raw_bytes, (32 << 20) - (8 << 20));
  EXPECT_EQ(temp_files_under(b_root()), 0);
  EXPECT_FALSE(fs::exists(b_root() / ".images.ncprev-tree-resume"));
}

TEST_F(TreeTest, FailedVerificationLeavesTheOldTree) {
  TransportOptions o = a_options();
  o.corrupt_literals = [](std::vector<std::uint8_t>& bytes) { bytes[bytes.size() / 2] ^= 0x10; };
  start_pair(nullptr, &o);
  fs::create_directories(b_root() / "ct" / "rootfs");
  write_bytes(b_root() / "ct" / "rootfs" / "old-file", {'o', 'l', 'd'});
  const fs::path src = a_file("src");
  fs::create_directories(src);
  write_bytes(src / "data", random_data(256 * 1024, 60));
  const auto st = send_tree("tree-bad", src, "ct/rootfs", 0);
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "verification_failed") << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "ct" / "rootfs" / "old-file"), (std::vector<std::uint8_t>{'o', 'l', 'd'}));
  EXPECT_FALSE(fs::exists(b_root() / "ct" / "rootfs" / "data"));
  EXPECT_EQ(temp_files_under(b_root()), 0);
}

TEST_F(TreeTest, ATargetThatIsAFileIsRefused) {
  start_pair();
  write_bytes(b_root() / "ct", {'x'});
  const fs::path src = a_file("src");
  fs::create_directories(src);
  const auto st = send_tree("tree-file", src, "ct");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "not_permitted") << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "ct"), (std::vector<std::uint8_t>{'x'}));
}

// A peer that speaks tree frames by hand.
class HostileTreeTest : public HostilePeerTest {
 protected:
  std::unique_ptr<FrameConnection> offer_tree(std::uint32_t entries) {
    auto conn = connect_as_a();
    Offer o = offer("ct/rootfs", 0);
    o.kind = TransferKindCode::kDirectory;
    o.entries = entries;
    o.mode = 0755;
    conn->send(FrameType::kOffer, 0, o.encode());
    return conn;
  }

  static std::vector<std::uint8_t> entry(std::uint32_t id, EntryType type, const std::string& path,
                                         const std::string& link = "", std::uint32_t link_entry = 0) {
    TreeEntry e;
    e.id = id;
    e.type = type;
    e.mode = 0755;
    e.path = path;
    e.symlink_target = link;
    e.link_entry = link_entry;
    return e.encode();
  }

  void expect_refused(FrameConnection& conn, ErrorCode code) {
    const auto e = error_from(conn);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, static_cast<std::uint16_t>(code)) << e->message;
    EXPECT_TRUE(fs::is_empty(dir_ / "outside"));
    EXPECT_FALSE(fs::exists(b_root() / "ct" / "rootfs"));
    EXPECT_EQ(temp_files_under(b_root()), 0);
  }

  void SetUp() override {
    HostilePeerTest::SetUp();
    fs::create_directories(dir_ / "outside");
  }
};

TEST_F(HostileTreeTest, DotDotPathIsMalformed) {
  auto conn = offer_tree(2);
  conn->send(FrameType::kEntry, 0, entry(0, EntryType::kDirectory, ""));
  TreeEntry e;
  e.id = 1;
  e.type = EntryType::kDirectory;
  // Encoded by hand: TreeEntry::encode would happily write it, decode must refuse it.
  e.path = "../../outside/x";
  conn->send(FrameType::kEntry, 0, e.encode());
  expect_refused(*conn, ErrorCode::kMalformed);
}

TEST_F(HostileTreeTest, EntryBelowASymlinkIsRefused) {
  auto conn = offer_tree(3);
  conn->send(FrameType::kEntry, 0, entry(0, EntryType::kDirectory, ""));
  conn->send(FrameType::kEntry, 0, entry(1, EntryType::kSymlink, "s", (dir_ / "outside").string()));
  conn->send(FrameType::kEntry, 0, entry(2, EntryType::kDirectory, "s/evil"));
  expect_refused(*conn, ErrorCode::kNotPermitted);
}

TEST_F(HostileTreeTest, HardLinkToAFolderIsRefused) {
  auto conn = offer_tree(3);
  conn->send(FrameType::kEntry, 0, entry(0, EntryType::kDirectory, ""));
  conn->send(FrameType::kEntry, 0, entry(1, EntryType::kDirectory, "d"));
  conn->send(FrameType::kEntry, 0, entry(2, EntryType::kHardlink, "h", "", 1));
  expect_refused(*conn, ErrorCode::kNotPermitted);
}

TEST_F(HostileTreeTest, EntriesOutOfOrderAreRefused) {
  auto conn = offer_tree(3);
  conn->send(FrameType::kEntry, 0, entry(0, EntryType::kDirectory, ""));
  conn->send(FrameType::kEntry, 0, entry(2, EntryType::kDirectory, "d"));
  expect_refused(*conn, ErrorCode::kUnexpectedFrame);
}

TEST(TreeFramesTest, EntryRoundTripsAndHostileEntriesAreRefused) {
  TreeEntry e;
  e.id = 7;
  e.type = EntryType::kRegular;
  e.mode = 04755;
  e.uid = 1;
  e.gid = 2;
  e.mtime_ns = 1'700'000'000'123'456'789;
  e.size = 5000;
  e.first_block = 3;
  e.path = "usr/bin/tool";
  e.xattrs = {{"security.capability", {1, 2}}, {"user.a", {3}}};
  const auto back = TreeEntry::decode(e.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->path, e.path);
  EXPECT_EQ(back->mode, e.mode);
  EXPECT_EQ(back->mtime_ns, e.mtime_ns);
  EXPECT_EQ(back->xattrs, e.xattrs);

  auto refused = [](TreeEntry x) { return !TreeEntry::decode(x.encode()).has_value(); };
  TreeEntry bad = e;
  bad.path = "/etc/passwd";
  EXPECT_TRUE(refused(bad));
  bad.path = "a/../../b";
  EXPECT_TRUE(refused(bad));
  bad.path = "a//b";
  EXPECT_TRUE(refused(bad));
  bad = e;
  bad.xattrs = {{"user.b", {}}, {"user.a", {}}};  // unsorted
  EXPECT_TRUE(refused(bad));
  bad = e;
  bad.type = EntryType::kSymlink;  // a symlink without a target
  bad.size = 0;
  bad.first_block = 0;
  EXPECT_TRUE(refused(bad));
  bad = e;
  bad.type = EntryType::kHardlink;  // to itself
  bad.size = bad.first_block = 0;
  bad.link_entry = 7;
  EXPECT_TRUE(refused(bad));
  bad = e;
  bad.mode = 010000;  // a type bit
  EXPECT_TRUE(refused(bad));
  bad = e;
  bad.id = 0;  // entry 0 is the root folder, with an empty path
  EXPECT_TRUE(refused(bad));
  auto truncated = e.encode();
  truncated.pop_back();
  EXPECT_FALSE(TreeEntry::decode(truncated));
}

TEST(TreeFramesTest, TreeOfferCountsBlocksPerFile) {
  Offer o;
  o.id = "t-1";
  o.kind = TransferKindCode::kDirectory;
  o.block_size = kBlock;
  o.target = "ct";
  o.entries = 3;
  o.total_bytes = 20;  // two files of 10 bytes: a block each
  o.total_blocks = 2;
  EXPECT_TRUE(Offer::decode(o.encode()));
  o.total_blocks = 5;  // more short blocks than there are entries
  EXPECT_FALSE(Offer::decode(o.encode()));
  o.kind = TransferKindCode::kFile;  // a file's blocks follow from its size alone
  o.total_blocks = 2;
  EXPECT_FALSE(Offer::decode(o.encode()));
}

TEST(TreeFramesTest, WantDecodesOnlyExactPayloads) {
  Want w;
  w.decisions = {{1, WantDecision::kSend}, {4, WantDecision::kSkip}};
  const auto back = Want::decode(w.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->decisions, w.decisions);
  auto bytes = w.encode();
  bytes.back() = 2;  // decision 2 is reserved
  EXPECT_FALSE(Want::decode(bytes));
  bytes.pop_back();
  EXPECT_FALSE(Want::decode(bytes));
}

}  // namespace
}  // namespace novacron::transport

// Two transport nodes in one process on loopback, each with its own data dir, port and
// node certificate from a real cluster CA: real TLS 1.3 between them, real files on disk.
// A FaultProxy between them breaks connections where a test needs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "asio_net.h"
#include "block_hash.h"
#include "block_index.h"
#include "error_codes.h"
#include "frames.h"
#include "host/identity/certificates.h"
#include "novacron/sdk/migration_transport.hpp"
#include "tests/support/fault_proxy.h"
#include "tests/support/test_env.h"
#include "transfer_frames.h"
#include "transport_node.h"
#include "transport_pair_fixture.h"
#include "tunnel.h"

namespace novacron::transport {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the fixture's helpers

TEST_F(TransportPairTest, FullCopyMixedFile) {
  start_pair();
  const auto data = mixed_data(24u << 20, 1);
  write_bytes(a_file("disk.img"), data);
  ::chmod(a_file("disk.img").c_str(), 0640);
  const timespec times[2] = {{1700000000, 123456789}, {1700000001, 987654321}};
  ::utimensat(AT_FDCWD, a_file("disk.img").c_str(), times, 0);

  const auto st = send("full-1", a_file("disk.img"), "vms/disk.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "vms/disk.img"), data);
  struct stat out {};
  ASSERT_EQ(::stat((b_root() / "vms/disk.img").c_str(), &out), 0);
  EXPECT_EQ(out.st_mode & 07777, 0640u);
  EXPECT_EQ(out.st_mtim.tv_sec, 1700000001);
  EXPECT_EQ(out.st_mtim.tv_nsec, 987654321);
  const auto rx = received("full-1");
  EXPECT_EQ(rx.state, TransferState::kSucceeded);
  EXPECT_EQ(rx.digest, st.digest);
  EXPECT_EQ(st.digest.rfind("xxh3-128:", 0), 0u);
  // Zero extents are never sent and text compresses: far fewer bytes than the file.
  EXPECT_GT(st.stats.blocks_zero, 0);
  EXPECT_LT(st.stats.wire_bytes_sent, static_cast<std::int64_t>(data.size()) * 6 / 10);
  EXPECT_EQ(st.stats.bytes_done, static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(temp_files_under(b_root()), 0);
}

TEST_F(TransportPairTest, DeltaOnePercentWireBytes) {
  start_pair();
  const size_t size = 32u << 20;
  auto base = random_data(size, 2);
  fs::create_directories(b_root() / "vms");
  write_bytes(b_root() / "vms/disk.img", base);
  // 1 % of the blocks change, spread over the file.
  auto changed = base;
  const size_t blocks = size / kBlock;
  std::mt19937 rng(3);
  std::set<size_t> picked;
  while (picked.size() < blocks / 100) picked.insert(rng() % blocks);
  for (const size_t b : picked) {
    for (size_t i = 0; i < kBlock; ++i) changed[b * kBlock + i] = static_cast<std::uint8_t>(rng());
  }
  write_bytes(a_file("disk.img"), changed);

  const auto st = send("delta-1", a_file("disk.img"), "vms/disk.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "vms/disk.img"), changed);
  EXPECT_EQ(st.stats.blocks_literal, static_cast<std::int64_t>(picked.size()));
  EXPECT_EQ(st.stats.blocks_delta, static_cast<std::int64_t>(blocks - picked.size()));
  // Both directions: the changed blocks, 16 B of hash per base block plus its bitmap, and
  // framing/TLS/handshake overhead.
  const std::int64_t changed_bytes = static_cast<std::int64_t>(picked.size() * kBlock);
  const std::int64_t bound =
      changed_bytes + 16 * static_cast<std::int64_t>(blocks) + static_cast<std::int64_t>(blocks / 8) + 80 * 1024;
  EXPECT_LE(st.stats.wire_bytes_sent + st.stats.wire_bytes_received, bound);
  EXPECT_GE(st.stats.wire_bytes_sent, changed_bytes);
}

// 1 % of the blocks of `base` replaced by random bytes; returns how many.
size_t change_one_percent(std::vector<std::uint8_t>& data, unsigned seed) {
  std::mt19937 rng(seed);
  std::set<size_t> picked;
  const size_t blocks = data.size() / kBlock;
  while (picked.size() < blocks / 100) picked.insert(rng() % blocks);
  for (const size_t b : picked) {
    for (size_t i = 0; i < kBlock; ++i) data[b * kBlock + i] = static_cast<std::uint8_t>(rng());
  }
  return picked.size();
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST_F(TransportPairTest, InPlaceDeltaWritesOnlyChangedBlocks) {
  start_pair();
  const auto base = random_data(16u << 20, 20);
  fs::create_directories(b_root() / "vms");
  write_bytes(b_root() / "vms/disk.img", base);
  const ino_t before = inode_of(b_root() / "vms/disk.img");
  auto changed = base;
  const size_t n = change_one_percent(changed, 21);
  changed.resize(changed.size() + 5000, 7);  // and the file grows by a short last block
  write_bytes(a_file("disk.img"), changed);
  const auto st = send("inplace-1", a_file("disk.img"), "vms/disk.img", 1, "", true);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "vms/disk.img"), changed);
  EXPECT_EQ(inode_of(b_root() / "vms/disk.img"), before) << "updated in place, not replaced";
  EXPECT_EQ(st.stats.blocks_literal, static_cast<std::int64_t>(n) + 2);  // + the grown tail
  EXPECT_EQ(temp_files_under(b_root()), 0);
  EXPECT_EQ(received("inplace-1").state, TransferState::kSucceeded);
  EXPECT_EQ(b_->clean_partials(std::chrono::milliseconds(0)), 0u) << "no record left behind";
}

TEST_F(TransportPairTest, InPlaceFailureStaysMarkedAndARetryRepairs) {
  TransportOptions o = a_options();
  o.corrupt_literals = [](std::vector<std::uint8_t>& bytes) { bytes[0] ^= 1; };
  start_pair(nullptr, &o);
  const auto base = random_data(4u << 20, 22);
  write_bytes(b_root() / "disk.img", base);
  auto changed = base;
  change_one_percent(changed, 23);
  write_bytes(a_file("disk.img"), changed);
  const auto bad = send("inplace-2", a_file("disk.img"), "disk.img", 0, "", true);
  EXPECT_EQ(bad.state, TransferState::kFailed);
  EXPECT_EQ(bad.error_code, "verification_failed");
  const auto rx = received("inplace-2");
  EXPECT_EQ(rx.state, TransferState::kPartial) << "the target is incomplete: " << rx.error_message;
  // A sender without the fault repairs it with the same id: a delta against what it holds.
  a_.reset();
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  const auto good = send("inplace-2", a_file("disk.img"), "disk.img", 0, "", true);
  ASSERT_EQ(good.state, TransferState::kSucceeded) << good.error_message;
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), changed);
  EXPECT_LE(good.stats.blocks_literal, 8) << "only the corrupted blocks travel again";
  EXPECT_EQ(b_->clean_partials(std::chrono::milliseconds(0)), 0u);
}

TEST_F(TransportPairTest, DeltaShiftedByOneBlockUsesBaseCopies) {
  start_pair();
  const auto base = random_data(4u << 20, 4);
  fs::create_directories(b_root() / "vms");
  write_bytes(b_root() / "vms/golden.img", base);
  // The new file is the base with one new block in front: every block moved by one.
  auto shifted = random_data(kBlock, 5);
  shifted.insert(shifted.end(), base.begin(), base.end());
  write_bytes(a_file("disk.img"), shifted);
  const auto st = send("shift-1", a_file("disk.img"), "vms/new.img", 1, "vms/golden.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "vms/new.img"), shifted);
  EXPECT_EQ(st.stats.blocks_literal, 1);
  EXPECT_EQ(st.stats.blocks_delta, static_cast<std::int64_t>(base.size() / kBlock));
  EXPECT_EQ(read_bytes(b_root() / "vms/golden.img"), base);  // the base is only read
}

TEST_F(TransportPairTest, SparseFileStaysSparse) {
  start_pair();
  const size_t size = 64u << 20;
  const int fd = ::open(a_file("sparse.img").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  const auto extent = random_data(256u << 10, 6);
  const off_t offsets[] = {0, 20 << 20, (64 << 20) - (256 << 10)};
  for (const off_t off : offsets) ASSERT_EQ(::pwrite(fd, extent.data(), extent.size(), off), (ssize_t)extent.size());
  ::close(fd);
  const std::int64_t data_bytes = 3 * static_cast<std::int64_t>(extent.size());

  const auto st = send("sparse-1", a_file("sparse.img"), "sparse.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "sparse.img"), read_bytes(a_file("sparse.img")));
  struct stat out {};
  ASSERT_EQ(::stat((b_root() / "sparse.img").c_str(), &out), 0);
  EXPECT_EQ(out.st_size, static_cast<off_t>(size));
  EXPECT_LE(out.st_blocks * 512, data_bytes + 64 * 1024);
  const int rfd = ::open((b_root() / "sparse.img").c_str(), O_RDONLY);
  EXPECT_EQ(::lseek(rfd, 0, SEEK_HOLE), static_cast<off_t>(extent.size()));
  EXPECT_EQ(::lseek(rfd, static_cast<off_t>(extent.size()), SEEK_DATA), offsets[1]);
  ::close(rfd);
  EXPECT_LT(st.stats.wire_bytes_sent, data_bytes + 64 * 1024);
}

// A delta whose temp file starts as a copy of the old file (written while it is scanned on
// ext4, a reflink where the file system shares extents): data that became zeros turns into
// holes, zeros in the old file stay holes, and the new content is exact.
TEST_F(TransportPairTest, DeltaTempStartsAsTheOldFileAndStaysSparse) {
  start_pair();
  const size_t size = 32u << 20;
  auto old_data = mixed_data(size, 70, 0, 50);                                // text and random, no zero extents
  std::fill(old_data.begin() + (8 << 20), old_data.begin() + (12 << 20), 0);  // a zero region
  write_bytes(b_root() / "disk.img", old_data);
  auto new_data = old_data;
  std::fill(new_data.begin() + (20 << 20), new_data.begin() + (24 << 20), 0);  // data becomes zeros
  for (size_t i = 0; i < 64; ++i) new_data[(1 << 20) + i * 65536] ^= 0x5A;     // 64 changed blocks
  write_bytes(a_file("disk.img"), new_data);

  const auto st = send("prefill-1", a_file("disk.img"), "disk.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), new_data);
  EXPECT_EQ(st.stats.blocks_literal, 64);
  const int fd = ::open((b_root() / "disk.img").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::lseek(fd, 8 << 20, SEEK_HOLE), 8 << 20);    // the old zeros were never written
  EXPECT_EQ(::lseek(fd, 20 << 20, SEEK_HOLE), 20 << 20);  // the new zeros are a hole too
  EXPECT_EQ(::lseek(fd, 20 << 20, SEEK_DATA), 24 << 20);
  ::close(fd);
  EXPECT_EQ(temp_files_under(b_root()), 0);
}

TEST_F(TransportPairTest, DedupRepeatedBlocks) {
  start_pair();
  std::vector<std::uint8_t> patterns = random_data(16 * kBlock, 7);
  std::vector<std::uint8_t> data;
  for (int i = 0; i < 2048; ++i) {
    const size_t p = static_cast<size_t>(i % 16) * kBlock;
    data.insert(data.end(), patterns.begin() + static_cast<std::ptrdiff_t>(p),
                patterns.begin() + static_cast<std::ptrdiff_t>(p + kBlock));
  }
  write_bytes(a_file("repeat.img"), data);
  const auto st = send("dedup-1", a_file("repeat.img"), "repeat.img", 0);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "repeat.img"), data);
  EXPECT_EQ(st.stats.blocks_literal, 16);
  EXPECT_EQ(st.stats.blocks_dedup, 2032);
  EXPECT_LT(st.stats.wire_bytes_sent, 128 * 1024);
}

TEST_F(TransportPairTest, ResumeAfterCutSendsOnlyTheRest) {
  std::unique_ptr<FaultProxy> proxy;
  const std::int64_t cut = 12 << 20;
  start_pair([&](const std::string& b_address) {
    std::string host;
    std::uint16_t port = 0;
    split_host_port(b_address, host, port);
    proxy = std::make_unique<FaultProxy>(host, port, FaultProxy::Faults{cut, -1});
    return proxy->address();
  });
  const size_t size = 32u << 20;
  const auto data = random_data(size, 8);
  write_bytes(a_file("disk.img"), data);
  const auto st = send("resume-1", a_file("disk.img"), "disk.img", 0);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_TRUE(proxy->faulted());
  EXPECT_GE(st.stats.attempts, 2);
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), data);
  // The retry sent at most what the first attempt had not delivered (plus what was in
  // flight at the cut), and kept the rest.
  EXPECT_LE(st.stats.literal_raw_bytes, static_cast<std::int64_t>(size) - cut + (8 << 20));
  EXPECT_GE(st.stats.blocks_resumed, (cut - (8 << 20)) / kBlock);
  EXPECT_EQ(temp_files_under(b_root()), 0);
}

TEST_F(TransportPairTest, CorruptionAfterHashFailsVerification) {
  TransportOptions o = a_options();
  o.corrupt_literals = [](std::vector<std::uint8_t>& bytes) { bytes[bytes.size() / 2] ^= 0x10; };
  start_pair(nullptr, &o);
  const auto old = random_data(1u << 20, 9);
  write_bytes(b_root() / "disk.img", old);
  write_bytes(a_file("disk.img"), random_data(2u << 20, 10));
  const auto st = send("corrupt-1", a_file("disk.img"), "disk.img", 0);
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "verification_failed") << st.error_message;
  EXPECT_EQ(st.stats.attempts, 1);  // final: not retried
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), old);
  EXPECT_EQ(temp_files_under(b_root()), 0);
  EXPECT_EQ(received("corrupt-1").state, TransferState::kFailed);
}

TEST_F(TransportPairTest, CiphertextFlipCaughtByTlsAndRetried) {
  std::unique_ptr<FaultProxy> proxy;
  start_pair([&](const std::string& b_address) {
    std::string host;
    std::uint16_t port = 0;
    split_host_port(b_address, host, port);
    proxy = std::make_unique<FaultProxy>(host, port, FaultProxy::Faults{-1, 3 << 20});
    return proxy->address();
  });
  const auto data = random_data(8u << 20, 11);
  write_bytes(a_file("disk.img"), data);
  const auto st = send("flip-1", a_file("disk.img"), "disk.img", 0);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_TRUE(proxy->faulted());
  EXPECT_GE(st.stats.attempts, 2);
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), data);
}

TEST_F(TransportPairTest, ForeignCaClientRefused) {
  b_ = make_node("node-b", "b", {{"node-a", "127.0.0.1:1"}});
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}}, "other-ca");
  write_bytes(a_file("disk.img"), random_data(1u << 20, 12));
  const auto st = send("foreign-1", a_file("disk.img"), "disk.img");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "untrusted_certificate") << st.error_message;
  EXPECT_FALSE(fs::exists(b_root() / "disk.img"));
  EXPECT_TRUE(b_->list("", 10).empty());
}

TEST_F(TransportPairTest, ForeignCaServerRefused) {
  b_ = make_node("node-b", "b", {{"node-a", "127.0.0.1:1"}}, "other-ca");
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  write_bytes(a_file("disk.img"), random_data(1u << 20, 13));
  const auto st = send("foreign-2", a_file("disk.img"), "disk.img");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "untrusted_certificate") << st.error_message;
  EXPECT_EQ(st.stats.attempts, 1);
  EXPECT_FALSE(fs::exists(b_root() / "disk.img"));
}

TEST_F(TransportPairTest, WrongNameRefused) {
  // node-b's listener presents a certificate for node-c (same CA).
  b_ = make_node("node-b", "b", {{"node-a", "127.0.0.1:1"}}, "ca", "node-c");
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  write_bytes(a_file("disk.img"), random_data(1u << 20, 14));
  const auto st = send("name-1", a_file("disk.img"), "disk.img");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "name_mismatch") << st.error_message;
  EXPECT_FALSE(fs::exists(b_root() / "disk.img"));
}

TEST_F(TransportPairTest, NotAPeerRefused) {
  b_ = make_node("node-b", "b", {{"node-x", "127.0.0.1:1"}});
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  write_bytes(a_file("disk.img"), random_data(1u << 20, 15));
  const auto st = send("peer-1", a_file("disk.img"), "disk.img");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "unknown_peer") << st.error_message;
  EXPECT_FALSE(fs::exists(b_root() / "disk.img"));
  EXPECT_TRUE(logged({"node-b: transport connection refused", "node-a", "is not a peer"}));
}

TEST_F(TransportPairTest, BadRequestsRefusedBeforeConnecting) {
  start_pair();
  sdk::SendRequest r;
  r.id = "bad-1";
  r.source = a_file("x").string();
  r.peer = "node-b";
  r.target = "../outside.img";
  EXPECT_EQ(a_->send(r).status().code(), sdk::StatusCode::kInvalidArgument);
  r.target = "/etc/passwd";
  EXPECT_EQ(a_->send(r).status().code(), sdk::StatusCode::kInvalidArgument);
  r.target = "ok.img";
  r.id = "Bad Id";
  EXPECT_EQ(a_->send(r).status().code(), sdk::StatusCode::kInvalidArgument);
  r.id = "bad-2";
  r.peer = "node-z";
  EXPECT_EQ(a_->send(r).status().code(), sdk::StatusCode::kFailedPrecondition);
  r.peer = "node-b";
  r.source = a_file("missing").string();
  const auto st = send("bad-3", a_file("missing"), "ok.img");
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "io");
}

// A peer that speaks the protocol by hand, bypassing the sender's own checks.
TEST_F(HostilePeerTest, TargetEscapeRefusedAndNothingWritten) {
  auto conn = connect_as_a();
  // The raw frame bypasses Offer::decode's own checks: the receiver must refuse it anyway.
  conn->send(FrameType::kOffer, 0, offer("../../escaped.img", 4096).encode());
  const auto e = error_from(*conn);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<std::uint16_t>(ErrorCode::kNotPermitted)) << e->message;
  EXPECT_FALSE(fs::exists(dir_ / "escaped.img"));
  EXPECT_FALSE(fs::exists(dir_ / "b" / "escaped.img"));
}

TEST_F(HostilePeerTest, SymlinkOutOfRootRefused) {
  fs::create_directories(dir_ / "outside");
  fs::create_directory_symlink(dir_ / "outside", b_root() / "link");
  auto conn = connect_as_a();
  conn->send(FrameType::kOffer, 0, offer("link/evil.img", 4096).encode());
  const auto e = error_from(*conn);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<std::uint16_t>(ErrorCode::kNotPermitted)) << e->message;
  EXPECT_TRUE(fs::is_empty(dir_ / "outside"));
}

TEST_F(HostilePeerTest, OutOfOrderBlocksCloseTheConnection) {
  auto conn = connect_as_a();
  conn->send(FrameType::kOffer, 0, offer("ooo.img", 8 * kBlock).encode());
  BlocksHeader h;
  h.first_block = 4;  // block 0 is next
  h.block_count = 1;
  std::vector<std::uint8_t> payload;
  encode_blocks_prefix(h, {OpRun{BlockOp::kZero, 1, 0}}, payload);
  conn->send(FrameType::kBlocks, 0, payload);
  const auto e = error_from(*conn);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<std::uint16_t>(ErrorCode::kUnexpectedFrame)) << e->message;
  EXPECT_FALSE(fs::exists(b_root() / "ooo.img"));
  // The node keeps serving: a normal transfer still works.
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  write_bytes(a_file("ok.img"), random_data(64 * 1024, 16));
  EXPECT_EQ(send("after-1", a_file("ok.img"), "ok.img").state, TransferState::kSucceeded);
}

TEST_F(HostilePeerTest, GarbageBytesAreAProtocolError) {
  auto conn = connect_as_a();
  std::vector<std::uint8_t> junk(kHeaderSize + 64, 0xAB);
  conn->send_prepared(FrameType::kOffer, 0, junk);  // a valid header with a garbage OFFER
  const auto e = error_from(*conn);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<std::uint16_t>(ErrorCode::kMalformed)) << e->message;
  for (int i = 0; i < 100 && !logged({"node-b: transport connection closed", "malformed"}); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(logged({"node-b: transport connection closed", "peer=node-a", "malformed"}));
}

TEST_F(TransportPairTest, JanitorRemovesAbandonedPartials) {
  std::unique_ptr<FaultProxy> proxy;
  TransportOptions o = a_options();
  o.retries = 0;
  start_pair(
      [&](const std::string& b_address) {
        std::string host;
        std::uint16_t port = 0;
        split_host_port(b_address, host, port);
        proxy = std::make_unique<FaultProxy>(host, port, FaultProxy::Faults{4 << 20, -1});
        return proxy->address();
      },
      &o);
  write_bytes(a_file("disk.img"), random_data(16u << 20, 17));
  const auto st = send("janitor-1", a_file("disk.img"), "disk.img", 0);
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "retries_exhausted") << st.error_message;
  EXPECT_EQ(received("janitor-1").state, TransferState::kPartial);
  EXPECT_EQ(temp_files_under(b_root()), 1);
  EXPECT_EQ(b_->clean_partials(std::chrono::hours(1)), 0u);  // still within retention
  EXPECT_EQ(b_->clean_partials(std::chrono::milliseconds(0)), 1u);
  EXPECT_EQ(temp_files_under(b_root()), 0);
  EXPECT_FALSE(fs::exists(b_root() / "disk.img"));
}

}  // namespace
}  // namespace novacron::transport

namespace novacron::transport {
namespace {

// A TCP endpoint on loopback that serves one connection with `serve` on its own thread.
class LocalEndpoint {
 public:
  explicit LocalEndpoint(std::function<void(int)> serve) {
    std::string error;
    fd_ = listen_loopback("127.0.0.1", port_, error);
    thread_ = std::thread([this, serve = std::move(serve)] {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 30000) != 1) return;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      serve(c);
      ::close(c);
    });
  }
  ~LocalEndpoint() { join(); }
  // Waits until the connection has been served (what `serve` recorded is then complete).
  void join() {
    if (!thread_.joinable()) return;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

void send_all(int fd, const std::vector<std::uint8_t>& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::vector<std::uint8_t> read_to_eof(int fd) {
  std::vector<std::uint8_t> out;
  std::uint8_t buf[65536];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.insert(out.end(), buf, buf + n);
  }
}

class TunnelTest : public TransportPairTest {
 protected:
  sdk::Result<sdk::TransferStatus> open(const std::string& id, const std::string& target, int compression = -1) {
    sdk::TunnelRequest r;
    r.id = id;
    r.peer = "node-b";
    r.target_address = target;
    r.compression = compression;
    r.accept_timeout = std::chrono::seconds(20);
    return a_->open_tunnel(r);
  }

  int connect_local(const std::string& address) {
    std::string error;
    const int fd = connect_tcp(address, 5000, error);
    EXPECT_GE(fd, 0) << error;
    return fd;
  }

  sdk::TransferStatus final_state(TransportNode& node, const std::string& id) {
    auto st = node.wait(id, std::chrono::seconds(30));
    EXPECT_TRUE(st.is_ok());
    return st.value();
  }
};

TEST_F(TunnelTest, CarriesBothDirectionsIntactAndClosesCleanly) {
  start_pair();
  // Text-like and random data, so both the zstd and the raw path carry bytes.
  const auto to_target = mixed_data(8u << 20, 30);
  const auto to_source = random_data(6u << 20, 31);
  std::vector<std::uint8_t> target_got;
  LocalEndpoint target([&](int fd) {
    std::thread writer([&] {
      send_all(fd, to_source);
      ::shutdown(fd, SHUT_WR);
    });
    target_got = read_to_eof(fd);
    writer.join();
  });
  auto opened = open("tun-1", target.address());
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  EXPECT_EQ(opened.value().state, TransferState::kListening);
  const int fd = connect_local(opened.value().local_address);
  std::thread writer([&] {
    send_all(fd, to_target);
    ::shutdown(fd, SHUT_WR);
  });
  const auto source_got = read_to_eof(fd);
  writer.join();
  ::close(fd);
  EXPECT_EQ(source_got, to_source);
  const auto a = final_state(*a_, "tun-1");
  const auto b = final_state(*b_, "tun-1");
  target.join();
  EXPECT_EQ(target_got, to_target);
  EXPECT_EQ(a.state, TransferState::kClosed) << a.error_code << ": " << a.error_message;
  EXPECT_EQ(b.state, TransferState::kClosed) << b.error_code << ": " << b.error_message;
  EXPECT_EQ(a.stats.bytes_done, static_cast<std::int64_t>(to_target.size() + to_source.size()));
  // The text half compressed: fewer bytes on the wire than carried.
  EXPECT_LT(a.stats.wire_bytes_sent, static_cast<std::int64_t>(to_target.size()));
}

TEST_F(TunnelTest, TargetClosingFirstEndsBothSides) {
  start_pair();
  const auto hello = random_data(100000, 32);
  LocalEndpoint target([&](int fd) { send_all(fd, hello); });  // sends, then closes
  auto opened = open("tun-2", target.address());
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  const int fd = connect_local(opened.value().local_address);
  EXPECT_EQ(read_to_eof(fd), hello);  // EOF after the last byte
  ::close(fd);
  EXPECT_EQ(final_state(*a_, "tun-2").state, TransferState::kClosed);
  EXPECT_EQ(final_state(*b_, "tun-2").state, TransferState::kClosed);
}

TEST_F(TunnelTest, ClientClosingFirstEndsBothSides) {
  start_pair();
  const auto hello = random_data(100000, 33);
  std::vector<std::uint8_t> got;
  LocalEndpoint target([&](int fd) { got = read_to_eof(fd); });  // reads to EOF, then closes
  auto opened = open("tun-3", target.address());
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  const int fd = connect_local(opened.value().local_address);
  send_all(fd, hello);
  ::shutdown(fd, SHUT_WR);
  EXPECT_TRUE(read_to_eof(fd).empty());
  ::close(fd);
  EXPECT_EQ(final_state(*a_, "tun-3").state, TransferState::kClosed);
  EXPECT_EQ(final_state(*b_, "tun-3").state, TransferState::kClosed);
  target.join();
  EXPECT_EQ(got, hello);
}

TEST_F(TunnelTest, SecondLocalConnectionIsRefused) {
  start_pair();
  LocalEndpoint target([&](int fd) { read_to_eof(fd); });
  auto opened = open("tun-4", target.address());
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  const int first = connect_local(opened.value().local_address);
  for (int i = 0; i < 50 && a_->status("tun-4").value().state != TransferState::kRunning; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string error;
  EXPECT_LT(connect_tcp(opened.value().local_address, 2000, error), 0) << "the listener accepts exactly one";
  ::close(first);
  EXPECT_EQ(final_state(*a_, "tun-4").state, TransferState::kClosed);
}

TEST_F(TunnelTest, TargetsOutsideTheAllowedNetworksAreRefused) {
  start_pair();
  auto refused = open("tun-5", "10.1.2.3:80");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("not_permitted"), std::string::npos) << refused.status().message();
  // An allowed address where nothing listens: target_refused.
  std::uint16_t port = 0;
  std::string error;
  const int fd = listen_loopback("127.0.0.1", port, error);
  ::close(fd);
  auto down = open("tun-6", "127.0.0.1:" + std::to_string(port));
  ASSERT_FALSE(down.is_ok());
  EXPECT_NE(down.status().message().find("target_refused"), std::string::npos) << down.status().message();
  EXPECT_EQ(a_->status("tun-6").value().state, TransferState::kFailed);
}

}  // namespace
}  // namespace novacron::transport
namespace novacron::transport {
namespace {

TEST(TunnelAddressTest, LoopbackAndTargetsAreCheckedAsAddresses) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.9.9.9"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_FALSE(is_loopback_address("[::1]"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0"));
  EXPECT_FALSE(is_loopback_address("::"));
  EXPECT_FALSE(is_loopback_address("localhost"));  // names are never resolved
  EXPECT_TRUE(tunnel_target_allowed("10.1.2.3:49152", {"10.0.0.0/8"}));
  EXPECT_FALSE(tunnel_target_allowed("11.1.2.3:49152", {"10.0.0.0/8"}));
  EXPECT_TRUE(tunnel_target_allowed("[::1]:5900", {"::1/128"}));
  EXPECT_FALSE(tunnel_target_allowed("127.0.0.1:0", {"127.0.0.0/8"}));
  EXPECT_FALSE(tunnel_target_allowed("127.0.0.1:80", {"garbage"}));
  std::uint16_t port = 0;
  std::string error;
  EXPECT_LT(listen_loopback("[::1]", port, error), 0);
  EXPECT_LT(listen_loopback("0.0.0.0", port, error), 0);
  const int fd = listen_loopback("::1", port, error);
  if (fd >= 0) {  // hosts without IPv6 loopback skip this part
    sockaddr_in6 a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&a.sin6_addr)) << "bound to loopback, never the wildcard";
    ::close(fd);
  }
}

}  // namespace
}  // namespace novacron::transport

namespace novacron::transport {
namespace {

// Block devices: two loop devices over files of the test (root and /dev/loop-control only).
class BlockDeviceTest : public TransportPairTest {
 protected:
  static constexpr const char* kLosetup = "/usr/sbin/losetup";

  void SetUp() override {
    if (::geteuid() != 0 || !fs::exists("/dev/loop-control") || !fs::exists(kLosetup)) {
      GTEST_SKIP() << "needs root, loop devices and " << kLosetup;
    }
    TransportPairTest::SetUp();
    source_data_ = random_data(8u << 20, 40);
    auto target_data = source_data_;
    changed_ = change_one_percent(target_data, 41);  // the target differs in 1 % of the blocks
    write_bytes(dir_ / "src.disk", source_data_);
    write_bytes(dir_ / "dst.disk", target_data);
    source_dev_ = attach(dir_ / "src.disk");
    target_dev_ = attach(dir_ / "dst.disk");
    if (source_dev_.empty() || target_dev_.empty()) GTEST_SKIP() << "no free loop device";
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    for (const auto& dev : {source_dev_, target_dev_}) {
      if (dev.empty()) continue;
      const auto r = novacron::testing::run({kLosetup, "-d", dev});
      EXPECT_EQ(r.exit_code, 0) << "losetup -d " << dev << ": " << r.err;
    }
  }
  std::string attach(const fs::path& file) {
    auto r = novacron::testing::run({kLosetup, "--find", "--show", file.string()});
    std::string dev = r.out;
    while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
    return r.exit_code == 0 ? dev : "";
  }
  void allow_target() {
    sdk::ReceivePolicy policy;
    policy.root = b_root().string();
    policy.block_devices = {target_dev_};
    ASSERT_TRUE(b_->set_receive_policy(policy).is_ok());
  }
  sdk::TransferStatus send_device(const std::string& id, const std::string& target) {
    sdk::SendRequest r;
    r.id = id;
    r.kind = sdk::TransferKind::kBlockDevice;
    r.source = source_dev_;
    r.peer = "node-b";
    r.target = target;
    r.compression = 0;
    auto started = a_->send(r);
    EXPECT_TRUE(started.is_ok()) << started.status().message();
    return a_->wait(id, std::chrono::seconds(60)).value();
  }
  std::vector<std::uint8_t> device_bytes(const std::string& dev) {
    std::vector<std::uint8_t> out(source_data_.size());
    const int fd = ::open(dev.c_str(), O_RDONLY | O_DIRECT);
    std::vector<std::uint8_t> buf(source_data_.size() + 4096);
    auto* aligned = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(buf.data()) + 4095) & ~4095ul);
    const ssize_t n = ::pread(fd, aligned, out.size(), 0);
    ::close(fd);
    if (n == static_cast<ssize_t>(out.size())) std::memcpy(out.data(), aligned, out.size());
    return out;
  }

  std::vector<std::uint8_t> source_data_;
  size_t changed_ = 0;
  std::string source_dev_, target_dev_;
};

TEST_F(BlockDeviceTest, WrittenInPlaceOnlyWhereItDiffers) {
  start_pair();
  allow_target();
  const auto st = send_device("dev-1", target_dev_);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_EQ(st.kind, sdk::TransferKind::kBlockDevice);
  EXPECT_EQ(st.stats.blocks_literal, static_cast<std::int64_t>(changed_));
  EXPECT_EQ(device_bytes(target_dev_), source_data_);
  EXPECT_EQ(received("dev-1").kind, sdk::TransferKind::kBlockDevice);
  EXPECT_EQ(b_->clean_partials(std::chrono::milliseconds(0)), 0u) << "the marker is gone once verified";
}

TEST_F(BlockDeviceTest, DevicesNotOnTheListAreRefused) {
  start_pair();
  allow_target();
  const auto st = send_device("dev-2", source_dev_);  // a real device, not on node-b's list
  EXPECT_EQ(st.state, TransferState::kFailed);
  EXPECT_EQ(st.error_code, "not_permitted") << st.error_message;
  sdk::SendRequest relative;
  relative.id = "dev-3";
  relative.kind = sdk::TransferKind::kBlockDevice;
  relative.source = source_dev_;
  relative.peer = "node-b";
  relative.target = "dev/loop0";
  EXPECT_EQ(a_->send(relative).status().code(), sdk::StatusCode::kInvalidArgument) << "refused before connecting";
  sdk::ReceivePolicy bad;
  bad.root = b_root().string();
  bad.block_devices = {(dir_ / "dst.disk").string()};
  EXPECT_EQ(b_->set_receive_policy(bad).code(), sdk::StatusCode::kInvalidArgument) << "a regular file is no device";
}

TEST_F(BlockDeviceTest, FailedVerificationLeavesItMarkedUntilRepaired) {
  TransportOptions o = a_options();
  o.corrupt_literals = [](std::vector<std::uint8_t>& bytes) { bytes[0] ^= 1; };
  start_pair(nullptr, &o);
  allow_target();
  const auto bad = send_device("dev-4", target_dev_);
  EXPECT_EQ(bad.error_code, "verification_failed");
  EXPECT_EQ(received("dev-4").state, TransferState::kPartial) << "marked incomplete";
  a_.reset();
  a_ = make_node("node-a", "a", {{"node-b", b_->listen_address()}});
  const auto good = send_device("dev-4", target_dev_);
  ASSERT_EQ(good.state, TransferState::kSucceeded) << good.error_message;
  EXPECT_EQ(device_bytes(target_dev_), source_data_);
  EXPECT_LE(good.stats.blocks_literal, static_cast<std::int64_t>(changed_));
}

}  // namespace
}  // namespace novacron::transport

namespace novacron::transport {
namespace {

// Reflinks: the receive root on an XFS file system (reflink=1) on a loop device, mounted by
// the test (root, mkfs.xfs, loop devices and mount permission; skipped elsewhere).
class ReflinkTest : public TransportPairTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || !fs::exists("/usr/sbin/mkfs.xfs") || !fs::exists("/dev/loop-control")) {
      GTEST_SKIP() << "needs root, mkfs.xfs and loop devices";
    }
    TransportPairTest::SetUp();
    image_ = dir_ / "xfs.img";
    mount_ = dir_ / "xfs";
    fs::create_directories(mount_);
    { std::ofstream(image_).close(); }
    fs::resize_file(image_, 320u << 20);  // mkfs.xfs wants more than 300 MB (sparse: costs nothing)
    using novacron::testing::run;
    const auto made = run({"/usr/sbin/mkfs.xfs", "-q", "-m", "reflink=1", image_.string()});
    if (made.exit_code != 0) GTEST_SKIP() << "cannot make an XFS file system here: " << made.err;
    const auto mounted = run({"/usr/bin/mount", "-o", "loop", image_.string(), mount_.string()});
    if (mounted.exit_code != 0) GTEST_SKIP() << "cannot mount an XFS file system here: " << mounted.err;
    mounted_ = true;
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    if (mounted_) EXPECT_EQ(novacron::testing::run({"/usr/bin/umount", mount_.string()}).exit_code, 0);
  }
  void receive_on_xfs() {
    sdk::ReceivePolicy policy;
    policy.root = mount_.string();
    ASSERT_TRUE(b_->set_receive_policy(policy).is_ok());
  }
  // Extents of `path` that share their blocks with another file (FIEMAP_EXTENT_SHARED).
  static int shared_extents(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    std::vector<std::uint8_t> buf(sizeof(fiemap) + 256 * sizeof(fiemap_extent));
    auto* map = reinterpret_cast<fiemap*>(buf.data());
    map->fm_length = ~0ull;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = 256;
    int shared = 0;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) == 0) {
      for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
        if ((map->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED) != 0) ++shared;
      }
    }
    ::close(fd);
    return shared;
  }

  fs::path image_, mount_;
  bool mounted_ = false;
};

TEST_F(ReflinkTest, DeltaSharesTheBaseExtentsInsteadOfCopying) {
  start_pair();
  receive_on_xfs();
  const auto golden = random_data(16u << 20, 50);
  write_bytes(mount_ / "golden.img", golden);
  auto changed = golden;
  const size_t n = change_one_percent(changed, 51);
  changed.resize(changed.size() - 1000);  // and a shorter, unaligned end
  write_bytes(a_file("disk.img"), changed);
  const auto st = send("clone-1", a_file("disk.img"), "vm/disk.img", 1, "golden.img");
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_code << ": " << st.error_message;
  EXPECT_EQ(read_bytes(mount_ / "vm/disk.img"), changed);
  EXPECT_EQ(read_bytes(mount_ / "golden.img"), golden);
  EXPECT_LE(st.stats.blocks_literal, static_cast<std::int64_t>(n) + 1);
  EXPECT_GT(shared_extents(mount_ / "vm/disk.img"), 0) << "unchanged blocks share the base's extents";
  // Again onto itself (the old target is the base): still correct.
  auto again = changed;
  change_one_percent(again, 52);
  write_bytes(a_file("disk.img"), again);
  const auto st2 = send("clone-2", a_file("disk.img"), "vm/disk.img", 1);
  ASSERT_EQ(st2.state, TransferState::kSucceeded) << st2.error_message;
  EXPECT_EQ(read_bytes(mount_ / "vm/disk.img"), again);
}

}  // namespace
}  // namespace novacron::transport
namespace novacron::transport {
namespace {
TEST(TunnelAddressTest, PolicyCidrsAreValidated) {
  EXPECT_TRUE(valid_cidr("10.0.0.0/8"));
  EXPECT_TRUE(valid_cidr("::1/128"));
  EXPECT_FALSE(valid_cidr("10.0.0.0/8abc"));
  EXPECT_FALSE(valid_cidr("10.0.0.300/24"));
  EXPECT_FALSE(valid_cidr("10.0.0.1"));
  EXPECT_FALSE(valid_cidr("10.0.0.0/33"));
  EXPECT_FALSE(valid_cidr("10.0.0.0/-1"));
}
}  // namespace
}  // namespace novacron::transport

namespace novacron::transport {
namespace {

int index_files(const fs::path& dir) {
  int n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".idx" ? 1 : 0;
  return n;
}

int count_logged(std::vector<std::string>& logs, std::mutex& mu, const std::string& part) {
  std::lock_guard lock(mu);
  return static_cast<int>(
      std::count_if(logs.begin(), logs.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; }));
}

TEST_F(TransportPairTest, IndexCacheSparesTheScanAndAStaleOneCostsOneRetry) {
  start_pair();
  const fs::path index_dir = dir_ / "b" / "transport" / "index";
  auto data = random_data(8u << 20, 60);
  write_bytes(a_file("disk.img"), data);
  ASSERT_EQ(send("idx-1", a_file("disk.img"), "disk.img", 0).state, TransferState::kSucceeded);
  EXPECT_EQ(index_files(index_dir), 1) << "the received file's index was written";

  // The next delta against it takes the base's hashes from the index.
  const size_t n = change_one_percent(data, 61);
  write_bytes(a_file("disk.img"), data);
  const auto st = send("idx-2", a_file("disk.img"), "disk.img", 0);
  ASSERT_EQ(st.state, TransferState::kSucceeded) << st.error_message;
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), data);
  EXPECT_EQ(st.stats.blocks_literal, static_cast<std::int64_t>(n));
  EXPECT_EQ(count_logged(logs_, logs_mu_, "index cache"), 1);

  // A damaged index is ignored (scan instead).
  for (const auto& e : fs::directory_iterator(index_dir)) {
    auto bytes = read_bytes(e.path());
    bytes[bytes.size() / 2] ^= 1;
    write_bytes(e.path(), bytes);
  }
  change_one_percent(data, 62);
  write_bytes(a_file("disk.img"), data);
  ASSERT_EQ(send("idx-3", a_file("disk.img"), "disk.img", 0).state, TransferState::kSucceeded);
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), data);
  EXPECT_EQ(count_logged(logs_, logs_mu_, "index cache"), 1) << "not used";

  // A stale index that still matches the file's identity (forged here: it claims the
  // target holds the new source already): the read-back check catches it, the attempt
  // fails base_changed, the index goes, and the retry scans and succeeds.
  const auto fresh = random_data(8u << 20, 63);
  write_bytes(a_file("disk.img"), fresh);
  struct stat st_target {};
  ASSERT_EQ(::stat((b_root() / "disk.img").c_str(), &st_target), 0);
  BlockIndex forged;
  forged.block_size = kBlock;
  forged.identify(st_target);
  for (size_t off = 0; off < fresh.size(); off += kBlock) {
    forged.present.push_back(true);
    forged.hashes.push_back(block_hash(std::span<const std::uint8_t>(fresh.data() + off, kBlock)));
  }
  std::string error;
  ASSERT_TRUE(write_block_index(index_dir.string(), forged, error)) << error;
  const auto healed = send("idx-4", a_file("disk.img"), "disk.img", 0);
  ASSERT_EQ(healed.state, TransferState::kSucceeded) << healed.error_code << ": " << healed.error_message;
  EXPECT_EQ(healed.stats.attempts, 2);
  EXPECT_EQ(read_bytes(b_root() / "disk.img"), fresh);
}

}  // namespace
}  // namespace novacron::transport

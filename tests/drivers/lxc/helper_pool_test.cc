// The helper channel (line framing) and the helper pool with the real novacron-lxc-helper:
// digest check, hello, refusals carried back with their codes, a killed helper replaced.
// Containers themselves are tested through the daemon (tests/integration/lxc_api_test.cc).
#include "helper_pool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "helper_protocol.h"
#include "lxc_driver.h"
#include "tests/support/test_env.h"

namespace novacron::lxc {
namespace {

using Clock = std::chrono::steady_clock;

struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void close_writer() {
    ::close(fd[1]);
    fd[1] = -1;
  }
  int fd[2] = {-1, -1};
};

TEST(HelperProtocolTest, SplitsAndJoinsLines) {
  SocketPair s;
  ASSERT_EQ(::write(s.fd[1], "{\"a\":1}\n{\"b\"", 12), 12);
  LineReader reader(s.fd[0]);
  auto first = reader.next();
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first.value(), "{\"a\":1}");
  ASSERT_EQ(::write(s.fd[1], ":2}\n", 4), 4);
  auto second = reader.next();
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second.value(), "{\"b\":2}");
  ASSERT_TRUE(write_message(s.fd[1], "third").is_ok());
  EXPECT_EQ(reader.next().value(), "third");
}

TEST(HelperProtocolTest, ClosedPeerDeadlineAndOversizedMessagesAreErrors) {
  {
    SocketPair s;
    LineReader reader(s.fd[0]);
    auto r = reader.next(Clock::now() + std::chrono::milliseconds(20));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), sdk::StatusCode::kDeadlineExceeded);
    s.close_writer();
    r = reader.next();
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), sdk::StatusCode::kUnavailable);
  }
  {
    SocketPair s;
    std::thread writer([&] {
      std::string big(kMaxMessageBytes + 70000, 'x');  // no newline within the limit
      (void)::send(s.fd[1], big.data(), big.size(), MSG_NOSIGNAL);
    });
    LineReader reader(s.fd[0]);
    auto r = reader.next(Clock::now() + std::chrono::seconds(30));
    ::shutdown(s.fd[0], SHUT_RDWR);  // unblock the writer
    writer.join();
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), sdk::StatusCode::kInvalidArgument) << r.status().message();
  }
  EXPECT_EQ(status_code_from_name("not_found"), sdk::StatusCode::kNotFound);
  EXPECT_EQ(status_code_from_name("bogus"), sdk::StatusCode::kInternal);
}

std::string helper_path() {
  return std::string(NOVACRON_TEST_BUNDLED_DIR) + "/io.novacron.driver.lxc/1.0.0/novacron-lxc-helper";
}

class HelperPoolTest : public ::testing::Test {
 protected:
  HelperPoolOptions options() { return {helper_path(), kHelperSha256, dir_.path().string(), 2}; }
  testing::TempDir dir_;
};

TEST_F(HelperPoolTest, RunsOnlyTheHelperItWasBuiltWith) {
  HelperPoolOptions o = options();
  o.expected_sha256 = std::string(64, '0');
  HelperPool pool(o);
  auto r = pool.call({{"op", "hello"}}, std::chrono::seconds(10));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("is not the one this plugin was built with"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(pool.pids().empty()) << "nothing was started";

  o = options();
  o.helper_path = (dir_ / "missing").string();
  HelperPool missing(o);
  r = missing.call({{"op", "hello"}}, std::chrono::seconds(10));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("cannot open the lxc helper"), std::string::npos) << r.status().message();
}

TEST_F(HelperPoolTest, AnswersAndRefusalsComeBackWithTheirCodes) {
  HelperPool pool(options());
  auto hello = pool.call({{"op", "hello"}}, std::chrono::seconds(10));
  ASSERT_TRUE(hello.is_ok()) << hello.status().message();
  EXPECT_EQ(hello.value()["protocol"], kHelperProtocolVersion);
  EXPECT_FALSE(hello.value()["lxc_version"].get<std::string>().empty());
  EXPECT_EQ(pool.hello()["protocol"], kHelperProtocolVersion);

  auto list = pool.call({{"op", "list"}}, std::chrono::seconds(10));
  ASSERT_TRUE(list.is_ok()) << list.status().message();
  EXPECT_TRUE(list.value()["containers"].empty());

  auto missing = pool.call({{"op", "start"}, {"name", "nope"}}, std::chrono::seconds(10));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), sdk::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);

  auto bad_name = pool.call({{"op", "start"}, {"name", "../etc"}}, std::chrono::seconds(10));
  EXPECT_EQ(bad_name.status().code(), sdk::StatusCode::kInvalidArgument);
  auto unknown = pool.call({{"op", "format_disk"}}, std::chrono::seconds(10));
  EXPECT_EQ(unknown.status().code(), sdk::StatusCode::kInvalidArgument);
  auto relative = pool.call({{"op", "create"}, {"name", "x"}, {"tarball", "rel.tar"}}, std::chrono::seconds(10));
  EXPECT_EQ(relative.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.replaced(), 0) << "refusals do not cost a helper";
}

// The state letter of /proc/PID/stat ('Z' for a zombie), or 0 when there is no such process.
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line) || line.rfind(')') == std::string::npos) return 0;
  return line[line.rfind(')') + 2];
}

TEST_F(HelperPoolTest, AHelperThatDiedWhileIdleIsReplacedBeforeUse) {
  HelperPool pool(options());
  ASSERT_TRUE(pool.call({{"op", "hello"}}, std::chrono::seconds(10)).is_ok());
  auto pids = pool.pids();
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  for (int i = 0; i < 200 && process_state(pids[0]) != 'Z'; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(process_state(pids[0]), 'Z') << "dead, not yet reaped";
  auto r = pool.call({{"op", "list"}}, std::chrono::seconds(10));
  ASSERT_TRUE(r.is_ok()) << "the dead helper was noticed before the request: " << r.status().message();
  EXPECT_EQ(pool.replaced(), 1);
  ASSERT_EQ(pool.pids().size(), 1u);
  EXPECT_NE(pool.pids()[0], pids[0]);
  EXPECT_EQ(process_state(pids[0]), 0) << "and reaped";
}

// True while a process runs `argv0 arg1` (exactly).
bool running_command(const std::string& argv0, const std::string& arg1) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string a0, a1;
    if (std::getline(in, a0, '\0') && std::getline(in, a1, '\0') && a0 == argv0 && a1 == arg1) return true;
  }
  return false;
}

TEST_F(HelperPoolTest, AHelperOverrunningItsDeadlineIsKilledWithWhatItRuns) {
  if (::geteuid() != 0) GTEST_SKIP() << "liblxc creates containers as root";
  // A "template" that hangs: the create never finishes.
  const std::string slow = (dir_ / "lxc-slow").string();
  testing::write_file(slow, "#!/bin/sh\nexec sleep 31.5\n");
  ::chmod(slow.c_str(), 0755);
  HelperPoolOptions o = options();
  o.lxcpath = (dir_ / "lxc").string();
  std::filesystem::create_directories(o.lxcpath);
  HelperPool pool(o);
  nlohmann::json create = {{"op", "create"},
                           {"name", "hung"},
                           {"template", slow},
                           {"config", nlohmann::json::array()},
                           {"marker", {{"vm_id", "vm-hung"}}}};
  auto r = pool.call(create, std::chrono::milliseconds(1500));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("did not answer \"create\" in time"), std::string::npos) << r.status().message();
  // The helper's process group went with it: no template script left running.
  for (int i = 0; i < 200 && running_command("sleep", "31.5"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(running_command("sleep", "31.5"));
  // What the create left is recognised by its provisional marker and removed; a wrong id
  // removes nothing.
  ASSERT_TRUE(std::filesystem::exists(o.lxcpath + "/hung/novacron.json"));
  auto other = pool.call({{"op", "discard"}, {"name", "hung"}, {"vm_id", "someone-else"}}, std::chrono::seconds(10));
  ASSERT_TRUE(other.is_ok()) << other.status().message();
  EXPECT_EQ(other.value()["discarded"], false);
  auto discarded = pool.call({{"op", "discard"}, {"name", "hung"}, {"vm_id", "vm-hung"}}, std::chrono::seconds(10));
  ASSERT_TRUE(discarded.is_ok()) << discarded.status().message();
  EXPECT_EQ(discarded.value()["discarded"], true);
  EXPECT_FALSE(std::filesystem::exists(o.lxcpath + "/hung"));
}

TEST_F(HelperPoolTest, OversizedRequestsAreRefusedBeforeSending) {
  HelperPool pool(options());
  nlohmann::json big = {{"op", "list"}, {"padding", std::string(kMaxMessageBytes, 'x')}};
  auto r = pool.call(big, std::chrono::seconds(10));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(pool.pids().empty()) << "no helper was needed to refuse it";
  // Not UTF-8: replaced, not thrown.
  auto odd = pool.call({{"op", "start"}, {"name", std::string("bad\xff")}}, std::chrono::seconds(10));
  ASSERT_FALSE(odd.is_ok());
  EXPECT_EQ(odd.status().code(), sdk::StatusCode::kInvalidArgument) << odd.status().message();
  EXPECT_EQ(pool.replaced(), 0);
}

TEST_F(HelperPoolTest, ConcurrentCallsShareTheBoundedPool) {
  HelperPool pool(options());
  std::vector<std::thread> threads;
  threads.reserve(6);
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        if (pool.call({{"op", "list"}}, std::chrono::seconds(30)).is_ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 30);
  EXPECT_LE(pool.pids().size(), 2u);
}

}  // namespace
}  // namespace novacron::lxc

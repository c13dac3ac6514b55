#include "helper_pool.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace novacron::lxc {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kHelloTimeout = std::chrono::seconds(10);
constexpr auto kExitGrace = std::chrono::seconds(2);

std::string errno_text() { return std::strerror(errno); }

}  // namespace

int copy_to_sealed_memfd(int fd, std::string& digest) {
  digest.clear();
  int mem = ::memfd_create("novacron-lxc-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mem < 0) return -1;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  std::vector<unsigned char> buf(1 << 16);
  off_t offset = 0;
  while (ok) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    for (ssize_t done = 0; ok && done < n;) {
      ssize_t w = ::write(mem, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      done += w > 0 ? w : 0;
    }
    offset += n;
  }
  ok = ok && ::fcntl(mem, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
  if (!ok) {
    ::close(mem);
    return -1;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    digest += kHex[md[i] >> 4];
    digest += kHex[md[i] & 0xf];
  }
  return mem;
}

HelperPool::~HelperPool() {
  std::vector<std::unique_ptr<Helper>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle.swap(idle_);
  }
  for (auto& h : idle) finish(*h, /*kill=*/false);
}

sdk::Result<std::unique_ptr<HelperPool::Helper>> HelperPool::spawn() {
  const std::string& path = options_.helper_path;
  int exe = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (exe < 0) return sdk::unavailable("cannot open the lxc helper " + path + ": " + errno_text());
  struct stat st {};
  if (::fstat(exe, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
      (st.st_uid != 0 && st.st_uid != ::geteuid())) {
    ::close(exe);
    return sdk::unavailable("the lxc helper " + path +
                            " must be a regular file owned by root (or this user) and writable only by its owner");
  }
  // The bytes are copied into a sealed memory file while they are hashed, and that file is
  // what runs: rewriting the helper on disk after the check changes nothing.
  std::string digest;
  int sealed = copy_to_sealed_memfd(exe, digest);
  ::close(exe);
  if (sealed < 0) return sdk::unavailable("cannot read the lxc helper " + path + ": " + errno_text());
  if (digest != options_.expected_sha256) {
    ::close(sealed);
    return sdk::unavailable("the lxc helper " + path + " is not the one this plugin was built with (sha256 " + digest +
                            ", expected " + options_.expected_sha256 + "): reinstall the plugin");
  }
  exe = sealed;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ::close(exe);
    return sdk::unavailable("socketpair: " + errno_text());
  }
  // Everything the child needs is prepared before fork(): after it, in a multithreaded
  // process, only async-signal-safe calls are allowed until the exec.
  std::string arg0 = "novacron-lxc-helper", flag = "--lxcpath", lxcpath = options_.lxcpath;
  char* argv[] = {arg0.data(), flag.data(), lxcpath.data(), nullptr};
  std::string env_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", env_lang = "LANG=C";
  char* envp[] = {env_path.data(), env_lang.data(), nullptr};
  sigset_t none;
  sigemptyset(&none);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(exe);
    ::close(sv[0]);
    ::close(sv[1]);
    return sdk::unavailable("fork: " + errno_text());
  }
  if (pid == 0) {
    ::setsid();  // its own session: a terminal's signals to the daemon do not reach it
    ::dup2(sv[1], STDIN_FILENO);
    ::dup2(sv[1], STDOUT_FILENO);
    ::close_range(3, static_cast<unsigned>(exe) - 1, 0);
    ::close_range(static_cast<unsigned>(exe) + 1, ~0U, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGKILL/SIGSTOP: EINVAL, fine
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::fexecve(exe, argv, envp);
    ::_exit(127);
  }
  ::close(exe);
  ::close(sv[1]);
  auto helper = std::make_unique<Helper>();
  helper->pid = pid;
  helper->fd = sv[0];
  helper->reader = std::make_unique<LineReader>(sv[0]);
  auto hello = exchange(*helper, {{"op", "hello"}}, Clock::now() + kHelloTimeout);
  if (!hello.is_ok()) return hello.status();
  auto protocol = hello.value().find("protocol");
  if (protocol == hello.value().end() || *protocol != kHelperProtocolVersion) {
    std::string got = protocol != hello.value().end() ? protocol->dump() : "none";
    finish(*helper, /*kill=*/true);
    return sdk::unavailable("the lxc helper speaks protocol " + got + ", the driver " +
                            std::to_string(kHelperProtocolVersion));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  hello_ = hello.value();
  running_.push_back(pid);
  return helper;
}

std::string HelperPool::finish(Helper& helper, bool kill) {
  if (helper.fd >= 0) ::close(helper.fd);  // the helper exits when its stdin closes
  helper.fd = -1;
  if (helper.pid <= 0) return "";
  // The helper leads its own process group (setsid): killing the group also ends a
  // template script it is running. Containers are not in it (liblxc's daemonized monitor
  // starts a session of its own).
  if (kill) ::kill(-helper.pid, SIGKILL);
  int status = 0;
  bool reaped = false, killed = kill;
  auto give_up = Clock::now() + kExitGrace;
  for (;;) {
    pid_t r = ::waitpid(helper.pid, &status, WNOHANG);
    if (r == helper.pid || (r < 0 && errno != EINTR)) {
      reaped = r == helper.pid;
      break;
    }
    if (Clock::now() > give_up) {
      if (killed) break;  // stuck in the kernel even after SIGKILL: stop waiting
      ::kill(-helper.pid, SIGKILL);
      killed = true;
      give_up = Clock::now() + kExitGrace;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  helper.pid = -1;
  if (!reaped) return "did not exit";
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "exit status " + std::to_string(WEXITSTATUS(status));
}

sdk::Result<json> HelperPool::exchange(Helper& helper, const json& request, Clock::time_point deadline) {
  const std::string op = request.value("op", "?");
  try {
    sdk::Status sent = write_message(helper.fd, request.dump(-1, ' ', false, json::error_handler_t::replace));
    sdk::Result<std::string> line = sent.is_ok() ? helper.reader->next(deadline) : sdk::Result<std::string>(sent);
    if (!line.is_ok()) {
      bool timed_out = line.status().code() == sdk::StatusCode::kDeadlineExceeded;
      pid_t pid = helper.pid;
      std::string how = finish(helper, /*kill=*/true);
      if (timed_out) {
        return sdk::unavailable("the lxc helper (pid " + std::to_string(pid) + ") did not answer \"" + op +
                                "\" in time; it was killed and will be replaced");
      }
      return sdk::unavailable("the lxc helper (pid " + std::to_string(pid) + ") died during \"" + op + "\" (" + how +
                              "); it will be replaced on the next call");
    }
    json response = json::parse(line.value(), nullptr, /*allow_exceptions=*/false);
    auto ok = response.is_object() ? response.find("ok") : json::iterator{};
    if (!response.is_object() || ok == response.end() || !ok->is_boolean()) {
      finish(helper, /*kill=*/true);
      return sdk::unavailable("the lxc helper answered \"" + op + "\" with something that is not a response");
    }
    if (ok->get<bool>()) return response;
    auto code = response.find("code");
    auto error = response.find("error");
    return sdk::Status{code != response.end() && code->is_string() ? status_code_from_name(code->get<std::string>())
                                                                   : sdk::StatusCode::kInternal,
                       error != response.end() && error->is_string() ? error->get<std::string>()
                                                                     : "the lxc helper refused \"" + op + "\""};
  } catch (const std::exception& e) {
    // Whatever state the channel is in now, it cannot be trusted: the helper goes.
    finish(helper, /*kill=*/true);
    return sdk::unavailable("talking to the lxc helper during \"" + op + "\" failed: " + e.what());
  }
}

void HelperPool::release(std::unique_ptr<Helper> helper, pid_t pid) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (helper->pid > 0) {
    idle_.push_back(std::move(helper));
  } else {  // exchange() killed it
    running_.erase(std::remove(running_.begin(), running_.end(), pid), running_.end());
    --live_;
    ++replaced_;
  }
  available_.notify_one();
}

bool HelperPool::still_alive(const Helper& helper) {
  // An idle helper has nothing to say: readable or hung up means it died (or misbehaves).
  pollfd p{helper.fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

sdk::Result<json> HelperPool::call(const json& request, std::chrono::milliseconds timeout) {
  const std::string text = request.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxMessageBytes) {
    return sdk::invalid_argument("request of " + std::to_string(text.size()) + " bytes is larger than the " +
                                 std::to_string(kMaxMessageBytes) + " the lxc helper reads");
  }
  // Waiting for a free helper and the helper's own work each get `timeout`: a call that
  // waited long for a helper must not kill a healthy one for being slow.
  std::unique_ptr<Helper> helper;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!available_.wait_for(lock, timeout, [&] { return !idle_.empty() || live_ < options_.max_processes; })) {
      return sdk::unavailable("every lxc helper is busy");
    }
    if (!idle_.empty()) {
      helper = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++live_;
    }
  }
  if (helper && !still_alive(*helper)) {
    pid_t pid = helper->pid;
    finish(*helper, /*kill=*/true);
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(std::remove(running_.begin(), running_.end(), pid), running_.end());
    ++replaced_;  // the slot stays counted in live_: it is refilled just below
    helper.reset();
  }
  if (!helper) {
    sdk::Result<std::unique_ptr<Helper>> spawned = sdk::unavailable("the lxc helper did not start");
    try {
      spawned = spawn();
    } catch (const std::exception& e) {
      spawned = sdk::unavailable(std::string("starting the lxc helper failed: ") + e.what());
    }
    if (!spawned.is_ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      --live_;
      available_.notify_one();
      return spawned.status();
    }
    helper = std::move(spawned.value());
  }
  pid_t pid = helper->pid;
  auto result = exchange(*helper, request, Clock::now() + timeout);
  release(std::move(helper), pid);
  return result;
}

json HelperPool::hello() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hello_;
}

int HelperPool::replaced() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return replaced_;
}

std::vector<pid_t> HelperPool::pids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

}  // namespace novacron::lxc

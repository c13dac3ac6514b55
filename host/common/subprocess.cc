#include "host/common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/common/unique_fd.h"

extern char** environ;

namespace novacron {
namespace {

std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view var(*e);
    if (var.starts_with("PATH=") || var.starts_with("NOVACRON_") || var.starts_with("ASAN_") ||
        var.starts_with("UBSAN_") || var.starts_with("LSAN_")) {
      env.emplace_back(var);
    }
  }
  return env;
}

void drain(int fd, std::string& sink, size_t limit, bool& open) {
  char buf[8192];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) {
    size_t room = limit > sink.size() ? limit - sink.size() : 0;
    sink.append(buf, std::min(room, static_cast<size_t>(n)));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    open = false;
  }
}

}  // namespace

Expected<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) return make_error("spawn", "no program given");
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return make_error("spawn", std::strerror(errno));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return make_error("spawn", std::strerror(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage = child_environment();
  std::vector<char*> env;
  env.reserve(env_storage.size() + 1);
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return make_error("spawn", argv[0] + ": " + std::strerror(rc));
  out_write.reset();
  err_write.reset();

  SubprocessResult result;
  bool out_open = true, err_open = true;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_open ? out_read.get() : -1, POLLIN, 0}, {err_open ? err_read.get() : -1, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
      drain(out_read.get(), result.out, options.output_limit, out_open);
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
      drain(err_read.get(), result.err, options.output_limit, err_open);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

std::string describe_exit(const SubprocessResult& result) {
  if (result.timed_out) return "did not finish in time and was killed";
  if (result.term_signal != 0) {
    const char* abbrev = ::sigabbrev_np(result.term_signal);
    return "was killed by signal " + std::to_string(result.term_signal) +
           (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : "");
  }
  return "exited with status " + std::to_string(result.exit_code);
}

}  // namespace novacron

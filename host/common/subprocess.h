#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "host/common/error.h"

namespace novacron {

struct SubprocessResult {
  int exit_code = -1;   // valid when term_signal == 0
  int term_signal = 0;  // signal that ended the child, 0 if it exited
  bool timed_out = false;
  std::string out;  // stdout, truncated to the output limit
  std::string err;  // stderr, truncated to the output limit
};

struct SubprocessOptions {
  std::chrono::milliseconds timeout{10000};
  size_t output_limit = 1 << 20;
};

// Runs argv[0] (an absolute path) with posix_spawn, no shell, an empty environment apart
// from PATH and NOVACRON_* variables, and collects its output. The child is killed
// (SIGKILL) when the timeout expires. Safe to call from a multithreaded process.
Expected<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options = {});

// Describes how a child ended, e.g. "exited with status 3" or "killed by signal 11 (SIGSEGV)".
std::string describe_exit(const SubprocessResult& result);

}  // namespace novacron

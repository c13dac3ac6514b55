// The driver's side of novacron-lxc-helper (protocol: helper_protocol.h): a small pool of
// helper processes, started on demand, verified before they run, replaced when they die.
//
// Trust: the host verified the plugin library; the library carries the SHA-256 of the
// helper it was built with, and the pool runs only a file with that digest. It copies the
// file into a sealed memfd while hashing it and executes that memfd (fexecve), so the file
// can be neither swapped nor rewritten between the check and the exec.
//
// Concurrency: each helper serves one request at a time; call() takes an idle helper,
// starts one when fewer than `max_processes` run, else waits for one to come back.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helper_protocol.h"
#include "novacron/sdk/status.hpp"

namespace novacron::lxc {

struct HelperPoolOptions {
  std::string helper_path;      // the novacron-lxc-helper executable
  std::string expected_sha256;  // lowercase hex; the file must match it
  std::string lxcpath;          // passed to every helper
  int max_processes = 2;
};

class HelperPool {
 public:
  explicit HelperPool(HelperPoolOptions options) : options_(std::move(options)) {}
  ~HelperPool();  // closes every helper's channel, then waits for it to exit (or kills it)
  HelperPool(const HelperPool&) = delete;
  HelperPool& operator=(const HelperPool&) = delete;

  // Sends `request` to a helper and returns the response fields when it answered ok.
  // A refusal comes back with the helper's code and message. A helper that cannot start,
  // dies or does not answer within `timeout` is killed and the call fails with kUnavailable.
  sdk::Result<nlohmann::json> call(const nlohmann::json& request, std::chrono::milliseconds timeout);

  // The hello answer of the most recently started helper (protocol, lxc_version, cgroup).
  nlohmann::json hello() const;
  // How many helpers died or were killed since the pool was made.
  int replaced() const;
  // The pids of the helpers running now (tests kill one to see it replaced).
  std::vector<pid_t> pids() const;

 private:
  struct Helper {
    pid_t pid = -1;
    int fd = -1;
    std::unique_ptr<LineReader> reader;
  };

  sdk::Result<std::unique_ptr<Helper>> spawn();
  sdk::Result<nlohmann::json> exchange(Helper& helper, const nlohmann::json& request,
                                       std::chrono::steady_clock::time_point deadline);
  // Kills (if it still runs) and reaps a helper; returns how it ended.
  static std::string finish(Helper& helper, bool kill);
  static bool still_alive(const Helper& helper);
  // Back to the idle list, or (when exchange() killed it) counted as replaced.
  void release(std::unique_ptr<Helper> helper, pid_t pid);

  HelperPoolOptions options_;
  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable available_;
  std::vector<std::unique_ptr<Helper>> idle_;
  std::vector<pid_t> running_;
  int live_ = 0;  // idle + busy + starting
  int replaced_ = 0;
  nlohmann::json hello_;
};

// Copies everything readable from `fd` into a new sealed memfd (close-on-exec), computing
// its SHA-256 into `digest` on the way; the memfd, or -1.
int copy_to_sealed_memfd(int fd, std::string& digest);

}  // namespace novacron::lxc

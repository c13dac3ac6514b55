// The host's thread pools, lent to plugins through HostServices:
//   * the I/O pool runs one Asio io_context (network I/O, timers) on a few threads;
//   * the blocking pool runs blocking library calls, disk I/O and subprocess waits.
// Asio stays out of this header (it is heavy to compile); code that needs the io_context
// includes executors_asio.h.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "novacron/sdk/executor.hpp"

namespace novacron {

class ExecutorPools {
 public:
  ExecutorPools(int io_threads, int blocking_threads);
  ~ExecutorPools();
  ExecutorPools(const ExecutorPools&) = delete;
  ExecutorPools& operator=(const ExecutorPools&) = delete;

  sdk::Executor& io();
  sdk::Executor& blocking();
  // Stops accepting work, finishes what is queued on the blocking pool, joins all threads.
  void shutdown();

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// An executor scoped to one plugin instance: work posted after close() is dropped, and
// close() waits until work already running has returned, so that a plugin's instance is
// never destroyed under its own tasks.
class ScopedExecutor : public sdk::Executor {
 public:
  // `owner` names the plugin in logs when its work throws.
  ScopedExecutor(sdk::Executor& base, std::string owner)
      : state_(std::make_shared<State>()), base_(base), owner_(std::move(owner)) {}
  ~ScopedExecutor() override { close(); }

  void post(std::function<void()> work) override;
  void post_after(std::chrono::milliseconds delay, std::function<void()> work) override;
  int concurrency() const override { return base_.concurrency(); }

  // Idempotent. Waits at most `timeout` for running work; returns false if some is still
  // running then (the caller logs it).
  bool close(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable idle;
    bool closed = false;
    int running = 0;
  };
  std::function<void()> wrap(std::function<void()> work);

  std::shared_ptr<State> state_;
  sdk::Executor& base_;
  std::string owner_;
};

}  // namespace novacron

#include "host/services/executors.h"

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <thread>
#include <vector>

#include "host/services/executors_asio.h"

namespace novacron {
namespace asio = boost::asio;

namespace {

void run_guarded(const std::function<void()>& work) noexcept {
  try {
    work();
  } catch (const std::exception& e) {
    spdlog::error("task threw and was dropped: {}", e.what());
  } catch (...) {
    spdlog::error("task threw a non-standard exception and was dropped");
  }
}

class IoExecutor : public sdk::Executor {
 public:
  IoExecutor(asio::io_context& io, int threads) : io_(io), threads_(threads) {}
  void post(std::function<void()> work) override {
    asio::post(io_, [w = std::move(work)] { run_guarded(w); });
  }
  void post_after(std::chrono::milliseconds delay, std::function<void()> work) override {
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([timer, w = std::move(work)](const boost::system::error_code& ec) {
      if (!ec) run_guarded(w);
    });
  }
  int concurrency() const override { return threads_; }

 private:
  asio::io_context& io_;
  int threads_;
};

class BlockingExecutor : public sdk::Executor {
 public:
  BlockingExecutor(asio::thread_pool& pool, asio::io_context& io, int threads)
      : pool_(pool), io_(io), threads_(threads) {}
  void post(std::function<void()> work) override {
    asio::post(pool_, [w = std::move(work)] { run_guarded(w); });
  }
  void post_after(std::chrono::milliseconds delay, std::function<void()> work) override {
    // The timer lives on the I/O context; the work itself runs on the blocking pool.
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([this, timer, w = std::move(work)](const boost::system::error_code& ec) mutable {
      if (!ec) post(std::move(w));
    });
  }
  int concurrency() const override { return threads_; }

 private:
  asio::thread_pool& pool_;
  asio::io_context& io_;
  int threads_;
};

}  // namespace

struct ExecutorPools::Impl {
  Impl(int io_threads, int blocking_threads)
      : blocking_pool(static_cast<size_t>(blocking_threads)),
        guard(asio::make_work_guard(io)),
        io_executor(io, io_threads),
        blocking_executor(blocking_pool, io, blocking_threads) {
    for (int i = 0; i < io_threads; ++i) threads.emplace_back([this] { io.run(); });
  }
  asio::io_context io;
  asio::thread_pool blocking_pool;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  IoExecutor io_executor;
  BlockingExecutor blocking_executor;
  std::vector<std::thread> threads;
  bool stopped = false;
};

ExecutorPools::ExecutorPools(int io_threads, int blocking_threads)
    : impl_(std::make_unique<Impl>(io_threads, blocking_threads)) {}

ExecutorPools::~ExecutorPools() { shutdown(); }

sdk::Executor& ExecutorPools::io() { return impl_->io_executor; }
sdk::Executor& ExecutorPools::blocking() { return impl_->blocking_executor; }

void ExecutorPools::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->blocking_pool.join();
  impl_->guard.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
}

asio::io_context& io_context_of(ExecutorPools& pools) { return pools.impl().io; }

std::function<void()> ScopedExecutor::wrap(std::function<void()> work) {
  return [state = state_, owner = owner_, w = std::move(work)] {
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      if (state->closed) return;
      ++state->running;
    }
    try {
      w();
    } catch (const std::exception& e) {
      spdlog::error("task posted by {} threw and was dropped: {}", owner, e.what());
    } catch (...) {
      spdlog::error("task posted by {} threw a non-standard exception and was dropped", owner);
    }
    std::lock_guard<std::mutex> lock(state->mutex);
    if (--state->running == 0) state->idle.notify_all();
  };
}

void ScopedExecutor::post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->closed) return;
  }
  base_.post(wrap(std::move(work)));
}

void ScopedExecutor::post_after(std::chrono::milliseconds delay, std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->closed) return;
  }
  base_.post_after(delay, wrap(std::move(work)));
}

bool ScopedExecutor::close(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->closed = true;
  return state_->idle.wait_for(lock, timeout, [&] { return state_->running == 0; });
}

}  // namespace novacron

// Executors the host lends to plugins. A plugin never creates an event loop or thread pool
// of its own for ordinary work: it posts to these. (A plugin may still own a fixed,
// documented number of threads, e.g. a libvirt event loop, started in start() and joined in
// stop().)
#pragma once

#include <chrono>
#include <functional>

namespace novacron::sdk {

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs `work` soon on one of the executor's threads. Thread-safe. `work` must not throw:
  // an escaping exception is caught, logged with the plugin's name and dropped.
  virtual void post(std::function<void()> work) = 0;

  // Runs `work` once after `delay`. Thread-safe. Work still pending when the plugin is
  // stopped is discarded without being run.
  virtual void post_after(std::chrono::milliseconds delay, std::function<void()> work) = 0;

  // Number of threads behind this executor; useful to size fan-out.
  virtual int concurrency() const = 0;
};

}  // namespace novacron::sdk

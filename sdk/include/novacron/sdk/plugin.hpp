// The base of every plugin kind.
//
// Two layers:
//   * PluginInstance (and the kind interfaces derived from it, e.g. SchedulingPolicy) is what
//     the host calls. Every method is noexcept: no exception ever crosses the boundary.
//   * PluginBase<Interface> is what a plugin author derives from. It implements the noexcept
//     methods by calling protected on_*() hooks inside a try/catch, so an exception thrown by
//     the author's code becomes a Status with the exception's message.
//
// Lifecycle, always in this order and from one host thread at a time:
//   create -> init(host, config) -> start() -> [calls of the kind's interface] -> stop()
//   -> destroy. init() and start() may fail; the host then calls stop() only if start()
//   succeeded and destroys the instance in every case. A plugin may own a fixed, documented
//   number of threads: start them in start(), join them in stop().
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "novacron/sdk/descriptor.hpp"
#include "novacron/sdk/host_services.hpp"
#include "novacron/sdk/status.hpp"

namespace novacron::sdk {

class PluginInstance {
 public:
  // Interface version 1 (SDK 1.0).

  // Validates and applies the plugin's config (JSON text of its section, "{}" if absent).
  // `host` outlives the instance. Must not start threads or do long blocking work.
  virtual Status init(HostServices& host, std::string_view config_json) noexcept = 0;
  // Starts background work. After a successful start the host may call the kind's methods.
  virtual Status start() noexcept = 0;
  // Stops all background work: joins owned threads, cancels timers. Idempotent.
  virtual void stop() noexcept = 0;
  // Reports whether the plugin can serve calls now; the message says why not.
  virtual Status health() noexcept = 0;

 protected:
  // Instances are destroyed by the plugin's destroy function, never by the host.
  virtual ~PluginInstance() = default;
};

// Runs `fn`, converting any exception into a Status with `what` as context.
template <typename Fn>
Status guard_status(std::string_view what, Fn&& fn) noexcept {
  try {
    return std::forward<Fn>(fn)();
  } catch (const std::bad_alloc&) {
    return {StatusCode::kResourceExhausted, std::string(what) + ": out of memory"};
  } catch (const std::exception& e) {
    return {StatusCode::kInternal, std::string(what) + " threw: " + e.what()};
  } catch (...) {
    return {StatusCode::kInternal, std::string(what) + " threw a non-standard exception"};
  }
}

// guard_status for calls that return a value (moved here from hypervisor_driver.hpp in SDK 1.3).
template <typename T, typename Fn>
Result<T> guard_result(std::string_view what, Fn&& fn) noexcept {
  std::optional<Result<T>> out;
  Status s = guard_status(what, [&] {
    out.emplace(fn());
    return out->is_ok() ? Status::ok() : out->status();
  });
  if (!s.is_ok()) return s;
  return std::move(*out);
}

// Base for plugin authors: derive from PluginBase<SchedulingPolicy> (or another kind's
// interface) and override the on_*() hooks you need; all have safe defaults.
template <typename Interface>
class PluginBase : public Interface {
 public:
  Status init(HostServices& host, std::string_view config_json) noexcept final {
    host_ = &host;
    return guard_status("init", [&] { return on_init(config_json); });
  }
  Status start() noexcept final {
    return guard_status("start", [&] { return on_start(); });
  }
  void stop() noexcept final {
    Status s = guard_status("stop", [&] {
      on_stop();
      return Status::ok();
    });
    if (!s.is_ok() && host_ != nullptr) host_->log(LogLevel::kError, s.message());
  }
  Status health() noexcept final {
    return guard_status("health", [&] { return on_health(); });
  }

 protected:
  virtual Status on_init(std::string_view /*config_json*/) { return Status::ok(); }
  virtual Status on_start() { return Status::ok(); }
  virtual void on_stop() {}
  virtual Status on_health() { return Status::ok(); }

  // Valid from init() on.
  HostServices& host() const { return *host_; }

 private:
  HostServices* host_ = nullptr;
};

}  // namespace novacron::sdk

// Shared helpers for the policy tests (tests/policies/<name>/): a HostServices that answers
// without a host (no I/O, inline executor), enough for PluginBase::init() in pure tests.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "novacron/sdk/executor.hpp"
#include "novacron/sdk/host_services.hpp"

namespace novacron::test {

// Runs work at once, on the caller's thread.
class InlineExecutor final : public sdk::Executor {
 public:
  void post(std::function<void()> work) override { work(); }
  void post_after(std::chrono::milliseconds /*delay*/, std::function<void()> work) override { work(); }
  int concurrency() const override { return 1; }
};

// A HostServices stub: logs are kept in `logs`, the key-value store is empty and refuses
// writes, metrics and events are dropped.
class StubHostServices final : public sdk::HostServices {
 public:
  explicit StubHostServices(std::string config_json = "{}") : config_(std::move(config_json)) {}

  std::vector<std::string> logs;

  int host_sdk_minor() const override { return 4; }
  std::string node_name() const override { return "node-test"; }
  void log(sdk::LogLevel /*level*/, std::string_view message, const sdk::Labels& /*fields*/) override {
    logs.emplace_back(message);
  }
  std::string config_json() const override { return config_; }
  sdk::Result<std::optional<std::string>> kv_get(std::string_view /*key*/) override {
    return std::optional<std::string>();
  }
  sdk::Status kv_put(std::string_view /*key*/, std::string_view /*value*/) override {
    return {sdk::StatusCode::kUnimplemented, "no key-value store in tests"};
  }
  sdk::Status kv_delete(std::string_view /*key*/) override { return sdk::Status::ok(); }
  sdk::Result<std::vector<std::string>> kv_list(std::string_view /*prefix*/) override {
    return std::vector<std::string>();
  }
  void publish_event(const sdk::Event& /*event*/) override {}
  void counter_add(std::string_view /*name*/, std::string_view /*help*/, const sdk::Labels& /*labels*/,
                   double /*delta*/) override {}
  void gauge_set(std::string_view /*name*/, std::string_view /*help*/, const sdk::Labels& /*labels*/,
                 double /*value*/) override {}
  void histogram_observe(std::string_view /*name*/, std::string_view /*help*/, const sdk::Labels& /*labels*/,
                         double /*value*/) override {}
  sdk::Executor& io_executor() override { return executor_; }
  sdk::Executor& blocking_executor() override { return executor_; }
  std::string data_dir() const override { return "/nonexistent"; }
  sdk::Result<sdk::ClusterIdentity> cluster_identity() const override {
    return sdk::Status{sdk::StatusCode::kFailedPrecondition, "no cluster in tests"};
  }
  std::vector<sdk::PeerInfo> peers() const override { return {}; }

 private:
  std::string config_;
  InlineExecutor executor_;
};

}  // namespace novacron::test

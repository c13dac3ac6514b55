// HostServices as one plugin instance sees it: scoped to the plugin's id (log tag, key-value
// namespace, metric label, event source) and to its lifetime (executors are closed before
// the instance is destroyed).
#pragma once

#include "host/config/host_config.h"

#include <memory>
#include <string>

#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"
#include "host/state/kv_store.h"
#include "novacron/sdk/host_services.hpp"

namespace spdlog {
class logger;
}

namespace novacron {

struct HostContext {
  std::string node_name;
  std::string data_dir;
  KvStore* kv = nullptr;
  EventBus* events = nullptr;
  MetricsRegistry* metrics = nullptr;
  ExecutorPools* pools = nullptr;
  const ClusterConfig* cluster = nullptr;  // null without a cluster section
  std::string transport_address;           // node.transport ("" = unset)
};

class PluginHostServices : public sdk::HostServices {
 public:
  PluginHostServices(const HostContext& ctx, std::string plugin_id, std::string config_json);
  ~PluginHostServices() override;

  int host_sdk_minor() const override;
  std::string node_name() const override { return ctx_.node_name; }
  void log(sdk::LogLevel level, std::string_view message, const sdk::Labels& fields) override;
  std::string config_json() const override { return config_json_; }
  sdk::Result<std::optional<std::string>> kv_get(std::string_view key) override;
  sdk::Status kv_put(std::string_view key, std::string_view value) override;
  sdk::Status kv_delete(std::string_view key) override;
  sdk::Result<std::vector<std::string>> kv_list(std::string_view prefix) override;
  void publish_event(const sdk::Event& event) override;
  void counter_add(std::string_view name, std::string_view help, const sdk::Labels& labels, double delta) override;
  void gauge_set(std::string_view name, std::string_view help, const sdk::Labels& labels, double value) override;
  void histogram_observe(std::string_view name, std::string_view help, const sdk::Labels& labels,
                         double value) override;
  sdk::Executor& io_executor() override { return *io_; }
  sdk::Executor& blocking_executor() override { return *blocking_; }
  std::string data_dir() const override { return ctx_.data_dir; }
  sdk::Result<sdk::ClusterIdentity> cluster_identity() const override;
  std::vector<sdk::PeerInfo> peers() const override;

  // Drops work posted from now on and waits for running work (plugin stop).
  void close_executors();

 private:
  std::string metric_name(std::string_view name) const;
  MetricLabels metric_labels(const sdk::Labels& labels) const;
  void report_bad_metric(std::string_view name);

  HostContext ctx_;
  std::string plugin_id_;
  std::string config_json_;
  std::unique_ptr<ScopedExecutor> io_;
  std::unique_ptr<ScopedExecutor> blocking_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace novacron

#include "host/services/plugin_host_services.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "novacron/sdk/version.hpp"

namespace novacron {
namespace {

sdk::Status to_status(const Error& e) {
  return {e.code == "invalid_argument" ? sdk::StatusCode::kInvalidArgument : sdk::StatusCode::kUnavailable, e.message};
}

spdlog::level::level_enum to_spdlog(sdk::LogLevel level) {
  switch (level) {
    case sdk::LogLevel::kTrace:
      return spdlog::level::trace;
    case sdk::LogLevel::kDebug:
      return spdlog::level::debug;
    case sdk::LogLevel::kInfo:
      return spdlog::level::info;
    case sdk::LogLevel::kWarn:
      return spdlog::level::warn;
    case sdk::LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

PluginHostServices::PluginHostServices(const HostContext& ctx, std::string plugin_id, std::string config_json)
    : ctx_(ctx),
      plugin_id_(std::move(plugin_id)),
      config_json_(std::move(config_json)),
      io_(std::make_unique<ScopedExecutor>(ctx.pools->io(), plugin_id_)),
      blocking_(std::make_unique<ScopedExecutor>(ctx.pools->blocking(), plugin_id_)),
      logger_(spdlog::default_logger()->clone(plugin_id_)) {}

PluginHostServices::~PluginHostServices() { close_executors(); }

int PluginHostServices::host_sdk_minor() const { return NOVACRON_SDK_VERSION_MINOR; }

sdk::Result<sdk::ClusterIdentity> PluginHostServices::cluster_identity() const {
  if (ctx_.cluster == nullptr) {
    return sdk::Status{sdk::StatusCode::kFailedPrecondition,
                       "the host config has no cluster section (CA and node certificate)"};
  }
  return sdk::ClusterIdentity{ctx_.cluster->ca.string(), ctx_.cluster->cert.string(), ctx_.cluster->key.string(),
                              ctx_.transport_address};
}

std::vector<sdk::PeerInfo> PluginHostServices::peers() const {
  std::vector<sdk::PeerInfo> out;
  if (ctx_.cluster == nullptr) return out;
  for (const auto& p : ctx_.cluster->peers) out.push_back({p.name, p.transport_address});
  return out;
}

void PluginHostServices::log(sdk::LogLevel level, std::string_view message, const sdk::Labels& fields) {
  std::string line(message);
  for (const auto& [k, v] : fields) {
    line += " " + k + "=";
    bool quote = v.empty() || v.find_first_of(" \"=") != std::string::npos;
    line += quote ? nlohmann::json(v).dump() : v;
  }
  logger_->log(to_spdlog(level), "{}", line);
}

sdk::Result<std::optional<std::string>> PluginHostServices::kv_get(std::string_view key) {
  auto r = ctx_.kv->get(plugin_id_, key);
  if (!r) return to_status(r.error());
  return *r;
}

sdk::Status PluginHostServices::kv_put(std::string_view key, std::string_view value) {
  auto r = ctx_.kv->put(plugin_id_, key, value);
  return r ? sdk::Status::ok() : to_status(r.error());
}

sdk::Status PluginHostServices::kv_delete(std::string_view key) {
  auto r = ctx_.kv->remove(plugin_id_, key);
  return r ? sdk::Status::ok() : to_status(r.error());
}

sdk::Result<std::vector<std::string>> PluginHostServices::kv_list(std::string_view prefix) {
  auto r = ctx_.kv->list(plugin_id_, prefix);
  if (!r) return to_status(r.error());
  return *r;
}

void PluginHostServices::publish_event(const sdk::Event& event) {
  std::string payload = event.payload_json.empty() ? "{}" : event.payload_json;
  auto parsed = nlohmann::json::parse(payload, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || event.type.empty()) {
    logger_->warn("dropped event type={}: its type is empty or its payload is not a JSON object",
                  nlohmann::json(event.type).dump());
    return;
  }
  ctx_.events->publish(event.type, event.object, plugin_id_, parsed.dump());
}

std::string PluginHostServices::metric_name(std::string_view name) const {
  return name.starts_with("novacron_") ? std::string(name) : "novacron_" + std::string(name);
}

MetricLabels PluginHostServices::metric_labels(const sdk::Labels& labels) const {
  MetricLabels out;
  out.reserve(labels.size() + 1);
  out.emplace_back("plugin", plugin_id_);
  for (const auto& l : labels) {
    if (l.first != "plugin") out.push_back(l);
  }
  return out;
}

void PluginHostServices::report_bad_metric(std::string_view name) {
  logger_->warn("metric {} rejected: invalid name or label, or registered earlier with another type",
                nlohmann::json(std::string(name)).dump());
}

void PluginHostServices::counter_add(std::string_view name, std::string_view help, const sdk::Labels& labels,
                                     double delta) {
  if (!ctx_.metrics->counter_add(metric_name(name), help, metric_labels(labels), delta)) report_bad_metric(name);
}

void PluginHostServices::gauge_set(std::string_view name, std::string_view help, const sdk::Labels& labels,
                                   double value) {
  if (!ctx_.metrics->gauge_set(metric_name(name), help, metric_labels(labels), value)) report_bad_metric(name);
}

void PluginHostServices::histogram_observe(std::string_view name, std::string_view help, const sdk::Labels& labels,
                                           double value) {
  if (!ctx_.metrics->histogram_observe(metric_name(name), help, metric_labels(labels), value)) {
    report_bad_metric(name);
  }
}

void PluginHostServices::close_executors() {
  if (!io_->close()) logger_->error("work posted to the I/O executor still runs 30 s after stop");
  if (!blocking_->close()) logger_->error("work posted to the blocking executor still runs 30 s after stop");
}

}  // namespace novacron

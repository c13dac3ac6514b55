// The plugin entry of io.novacron.transport: a TransportNode configured from the plugin's
// config section and the host's cluster identity, publishing transfer events and metrics
// through HostServices.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"
#include "novacron/sdk/migration_transport.hpp"
#include "transport_node.h"

namespace novacron::transport {
namespace {

using sdk::Status;
using sdk::StatusCode;

// A compact event payload: the figures a watcher of progress needs.
std::string event_payload(const sdk::TransferStatus& s) {
  nlohmann::json j = {{"id", s.id},
                      {"peer", s.peer},
                      {"target", s.target},
                      {"direction", s.direction == sdk::TransferDirection::kSend ? "send" : "receive"},
                      {"state", sdk::transfer_state_name(s.state)},
                      {"bytes_total", s.stats.bytes_total},
                      {"bytes_done", s.stats.bytes_done},
                      {"wire_bytes_sent", s.stats.wire_bytes_sent},
                      {"wire_bytes_received", s.stats.wire_bytes_received},
                      {"throughput_bytes_per_second", s.stats.throughput_bytes_per_second},
                      {"eta_ms", s.stats.eta_ms},
                      {"elapsed_ms", s.stats.elapsed_ms},
                      {"attempts", s.stats.attempts}};
  if (!s.error_code.empty()) {
    j["error_code"] = s.error_code;
    j["error_message"] = s.error_message;
  }
  if (!s.digest.empty()) j["digest"] = s.digest;
  return j.dump();
}

class TransportPlugin final : public sdk::MigrationTransportBase {
 protected:
  Status on_init(std::string_view config_json) override {
    if (host().host_sdk_minor() < 3) {
      return {StatusCode::kFailedPrecondition, "needs a host with SDK 1.3 (cluster identity and peers)"};
    }
    auto identity = host().cluster_identity();
    if (!identity.is_ok()) return identity.status();
    sdk::ConfigReader cfg(config_json);
    TransportOptions o;
    o.node_name = host().node_name();
    o.identity = {identity.value().ca_file, identity.value().cert_file, identity.value().key_file};
    o.listen_address = cfg.string("listen", identity.value().transport_address);
    o.workers = static_cast<int>(cfg.integer("workers", 2, 1, 64));
    o.retries = static_cast<int>(cfg.integer("retries", 5, 0, 100));
    o.retry_max_backoff = std::chrono::milliseconds(cfg.integer("retry_max_backoff_ms", 30000, 100, 3600000));
    o.partial_retention =
        std::chrono::seconds(cfg.integer("partial_retention_seconds", 86400, 0, std::int64_t{365} * 86400));
    o.janitor_interval = std::chrono::seconds(cfg.integer("janitor_interval_seconds", 60, 1, 86400));
    const std::string durability = cfg.string("durability", "fsync");
    o.fsync = durability != "none";
    o.node_bwlimit_bytes_per_second = cfg.integer("node_bwlimit_bytes_per_second", 0, 0, INT64_MAX);
    o.default_block_size = static_cast<std::uint32_t>(cfg.integer("block_size", 4096, 4096, 1 << 20));
    o.max_compression_level = static_cast<int>(cfg.integer("max_compression_level", 9, 1, 19));
    o.max_transfers_kept = static_cast<size_t>(cfg.integer("max_transfers_kept", 1000, 10, 1000000));
    o.max_incoming = static_cast<int>(cfg.integer("max_incoming", 16, 1, 1024));
    o.index_cache = cfg.boolean("index_cache", false);
    progress_interval_ = std::chrono::milliseconds(cfg.integer("progress_interval_ms", 1000, 100, 60000));
    cfg.reject_unknown_keys();
    if (!cfg.ok()) return {StatusCode::kInvalidArgument, cfg.error()};
    if (durability != "fsync" && durability != "none") {
      return {StatusCode::kInvalidArgument, "/durability: expected \"fsync\" or \"none\", got \"" + durability + "\""};
    }
    if (o.default_block_size & (o.default_block_size - 1)) {
      return {StatusCode::kInvalidArgument, "/block_size: expected a power of two"};
    }
    if (o.listen_address.empty()) {
      return {StatusCode::kInvalidArgument,
              "/listen: no address (set it here or as node.transport in the host config)"};
    }
    for (const auto& p : host().peers()) {
      if (!p.transport_address.empty()) o.peers[p.name] = p.transport_address;
    }
    o.data_dir = host().data_dir();
    o.log = [this](bool warning, const std::string& message) {
      host().log(warning ? sdk::LogLevel::kWarn : sdk::LogLevel::kInfo, message);
    };
    node_ = std::make_unique<TransportNode>(std::move(o));
    return Status::ok();
  }

  Status on_start() override {
    node_->set_event_sink(
        [this](const std::string& type, const sdk::TransferStatus& s) { on_transfer_event(type, s); });
    if (Status s = node_->start(); !s.is_ok()) return s;
    host().log(sdk::LogLevel::kInfo, "transport listening", {{"address", node_->listen_address()}});
    reporter_ = std::thread([this] { report_loop(); });
    return Status::ok();
  }

  void on_stop() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (reporter_.joinable()) reporter_.join();
    if (node_) node_->stop();
  }

  Status on_health() override { return Status::ok(); }

  Status on_set_receive_policy(const sdk::ReceivePolicy& policy) override { return node_->set_receive_policy(policy); }
  sdk::Result<sdk::TransferStatus> on_send(const sdk::SendRequest& request) override { return node_->send(request); }
  sdk::Result<sdk::TransferStatus> on_open_tunnel(const sdk::TunnelRequest& request) override {
    return node_->open_tunnel(request);
  }
  sdk::Result<sdk::TransferStatus> on_transfer_status(std::string_view id) override { return node_->status(id); }
  sdk::Result<std::vector<sdk::TransferStatus>> on_list_transfers(std::string_view after, std::size_t limit) override {
    return node_->list(after, limit);
  }
  sdk::Result<sdk::TransferStatus> on_wait_transfer(std::string_view id, std::chrono::milliseconds timeout) override {
    return node_->wait(id, timeout);
  }
  Status on_cancel_transfer(std::string_view id) override { return node_->cancel(id); }
  Status on_set_transfer_limit(std::string_view id, std::int64_t bps) override {
    return node_->set_transfer_limit(id, bps);
  }
  Status on_set_node_limit(std::int64_t bps) override { return node_->set_node_limit(bps); }
  sdk::Result<std::int64_t> on_node_limit() override { return node_->node_limit(); }

 private:
  void on_transfer_event(const std::string& type, const sdk::TransferStatus& s) {
    host().publish_event({type, "transfer/" + s.id, event_payload(s)});
    const std::string direction = s.direction == sdk::TransferDirection::kSend ? "send" : "receive";
    if (!sdk::transfer_state_is_final(s.state)) return;
    host().counter_add("novacron_transport_transfers_total", "Transfers that ended, by direction and result",
                       {{"direction", direction}, {"result", sdk::transfer_state_name(s.state)}}, 1);
    host().counter_add("novacron_transport_raw_bytes_total", "Raw bytes of transfers that ended",
                       {{"direction", direction}}, static_cast<double>(s.stats.bytes_done));
    host().counter_add("novacron_transport_wire_bytes_total", "TLS bytes of transfers that ended",
                       {{"direction", "out"}}, static_cast<double>(s.stats.wire_bytes_sent));
    host().counter_add("novacron_transport_wire_bytes_total", "TLS bytes of transfers that ended",
                       {{"direction", "in"}}, static_cast<double>(s.stats.wire_bytes_received));
    const std::pair<const char*, std::int64_t> blocks[] = {{"literal", s.stats.blocks_literal},
                                                           {"delta", s.stats.blocks_delta},
                                                           {"dedup", s.stats.blocks_dedup},
                                                           {"zero", s.stats.blocks_zero},
                                                           {"resumed", s.stats.blocks_resumed}};
    for (const auto& [disposition, n] : blocks) {
      host().counter_add("novacron_transport_blocks_total", "Blocks of transfers that ended, by how they travelled",
                         {{"direction", direction}, {"disposition", disposition}}, static_cast<double>(n));
    }
  }

  // Once per interval: progress events for running transfers, and the gauges.
  void report_loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, progress_interval_, [&] { return stopping_; })) {
      lock.unlock();
      int active_send = 0, active_receive = 0, partials = 0;
      double rate_send = 0, rate_receive = 0;
      std::string after;
      while (true) {
        auto page = node_->list(after, 500);
        for (const auto& s : page) {
          if (s.state == sdk::TransferState::kPartial) ++partials;
          if (sdk::transfer_state_is_final(s.state)) continue;
          const bool send = s.direction == sdk::TransferDirection::kSend;
          (send ? active_send : active_receive)++;
          (send ? rate_send : rate_receive) += s.stats.throughput_bytes_per_second;
          host().publish_event({"transfer.progress", "transfer/" + s.id, event_payload(s)});
        }
        if (page.size() < 500) break;
        after = page.back().id;
      }
      const char* help = "Transfers running now";
      host().gauge_set("novacron_transport_transfers_active", help, {{"direction", "send"}}, active_send);
      host().gauge_set("novacron_transport_transfers_active", help, {{"direction", "receive"}}, active_receive);
      const char* rate_help = "Raw bytes per second of the running transfers";
      host().gauge_set("novacron_transport_throughput_bytes_per_second", rate_help, {{"direction", "send"}}, rate_send);
      host().gauge_set("novacron_transport_throughput_bytes_per_second", rate_help, {{"direction", "receive"}},
                       rate_receive);
      host().gauge_set("novacron_transport_partials", "Interrupted receives kept for a resume", {}, partials);
      host().gauge_set("novacron_transport_node_bwlimit_bytes_per_second", "The node's bandwidth limit (0 = none)", {},
                       static_cast<double>(node_->node_limit()));
      lock.lock();
    }
  }

  std::unique_ptr<TransportNode> node_;
  std::chrono::milliseconds progress_interval_{1000};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread reporter_;
};

}  // namespace
}  // namespace novacron::transport

NOVACRON_PLUGIN(novacron::transport::TransportPlugin)

// Transfers through the node's migration transport plugin (plugins/transport): requests from
// the API checked and their source resolved beneath the transfers root, the plugin's
// transfer statuses as JSON, and the receive policy kept set on whichever transport plugin
// runs (also after it is disabled and enabled again).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "host/common/error.h"
#include "host/config/host_config.h"
#include "host/plugins/plugin_manager.h"
#include "novacron/sdk/migration_transport.hpp"

namespace novacron {

class TransferService {
 public:
  TransferService(const HostConfig& config, PluginManager& plugins);
  ~TransferService();
  TransferService(const TransferService&) = delete;
  TransferService& operator=(const TransferService&) = delete;

  // Starts the thread that keeps the receive policy set (checked every 2 s).
  void start();
  void stop();
  // Sets the receive policy on the running transport unless this instance already has it.
  void ensure_policy();

  std::filesystem::path root() const;

  // POST /v1/transfers. Errors: invalid_argument (naming the field), path_escapes_root,
  // not_found, transport_unavailable, already_exists, failed_precondition.
  Expected<nlohmann::json> send(const nlohmann::json& body);
  // POST /v1/tunnels: a loopback endpoint here carried to target_address on the peer.
  Expected<nlohmann::json> open_tunnel(const nlohmann::json& body);
  Expected<nlohmann::json> get(const std::string& id);
  // Items with id > after, at most limit (+1 to tell whether more follow).
  Expected<std::vector<nlohmann::json>> list(const std::string& after, std::size_t limit);
  Expected<nlohmann::json> cancel(const std::string& id);
  Expected<nlohmann::json> set_limit(const std::string& id, std::int64_t bytes_per_second);
  Expected<nlohmann::json> node_limits();
  Expected<nlohmann::json> set_node_limit(std::int64_t bytes_per_second);

  static nlohmann::json to_json(const sdk::TransferStatus& status);

 private:
  BorrowedPlugin<sdk::MigrationTransport> transport(std::string* id = nullptr);
  Expected<std::string> resolve_source(const std::string& source) const;
  Expected<std::string> listed_device(const std::string& source) const;

  const HostConfig& config_;
  PluginManager& plugins_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread keeper_;
  // The transport instance and plugin generation the policy was last set for.
  const void* policy_for_ = nullptr;
  std::uint64_t policy_generation_ = 0;
  std::string policy_error_;  // the last reason the policy was refused (logged once)
};

}  // namespace novacron

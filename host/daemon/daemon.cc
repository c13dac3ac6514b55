#include "host/daemon/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "host/api/api_server.h"
#include "host/daemon/data_dir.h"
#include "host/daemon/logging.h"
#include "host/identity/certificates.h"
#include "host/placement/placement_service.h"
#include "host/plugins/inspector.h"
#include "host/plugins/plugin_manager.h"
#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"
#include "host/state/kv_store.h"
#include "host/state/schema.h"
#include "host/transfers/transfer_service.h"
#include "host/vms/vm_service.h"
#include "novacron/sdk/version.hpp"

namespace novacron {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void block_shutdown_signals() {
  sigset_t set = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

fs::path default_bundled_plugin_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / ".." / "lib" / "novacron" / "plugins").lexically_normal();
}

namespace {

int wait_for_shutdown_signal() {
  sigset_t set = shutdown_signals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP received; config reload is not supported yet, ignoring");
      continue;
    }
    return sig;
  }
}

}  // namespace

namespace {

// Event numbers of this run start after the previous run's reservation (EventBus).
Expected<void> continue_event_sequence(KvStore& kv, EventBus& events) {
  constexpr std::string_view kNamespace = "@host", kKey = "events.seq_reserved";
  auto stored = kv.get(kNamespace, kKey);
  if (!stored) return tl::unexpected(stored.error());
  std::uint64_t reserved = 0;
  if (*stored) reserved = std::strtoull((*stored)->c_str(), nullptr, 10);
  std::uint64_t up_to = reserved + EventBus::kSeqBlock;
  if (auto r = kv.put(kNamespace, kKey, std::to_string(up_to)); !r) return r;
  events.start_sequence_at(reserved + 1, up_to, [&kv, kNamespace, kKey](std::uint64_t next) {
    auto r = kv.put(kNamespace, kKey, std::to_string(next));
    if (!r) spdlog::error("cannot reserve event sequence numbers: {}", r.error().message);
    return r.has_value();
  });
  return {};
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
  const HostConfig& cfg = options.config;
  setup_logging(cfg.log_level, cfg.log_format);
  spdlog::info("novacrond starting node={} sdk={} config={} data_dir={}", cfg.node_name, NOVACRON_SDK_VERSION_STRING,
               cfg.source.string(), cfg.data_dir.string());

  auto lock = DataDirLock::acquire(cfg.data_dir);
  if (!lock) {
    spdlog::critical("cannot start: {}", lock.error().message);
    return 1;
  }
  auto db = open_host_database(cfg.data_dir);
  if (!db) {
    spdlog::critical("cannot start: {}", db.error().message);
    return 1;
  }
  auto keys = TrustedKeys::load(cfg.trusted_keys);
  if (!keys) {
    spdlog::critical("cannot start: {}", keys.error().message);
    return 1;
  }
  if (cfg.require_signatures && keys->empty()) {
    spdlog::critical("cannot start: /plugins/require_signatures is true but /plugins/trusted_keys is empty");
    return 1;
  }

  if (cfg.cluster) {
    // Peers would refuse this node anyway; say why at start-up instead of at every call.
    if (auto r = verify_node_certificate(cfg.cluster->ca, cfg.cluster->cert, cfg.node_name); !r) {
      spdlog::critical("cannot start: /cluster/cert: {} (issue one with: novacron cert issue {})", r.error().message,
                       cfg.node_name);
      return 1;
    }
  }

  PluginCatalog catalog(**db);
  KvStore kv(**db);
  EventBus events(cfg.event_retention);
  if (auto r = continue_event_sequence(kv, events); !r) {
    spdlog::critical("cannot start: {}", r.error().message);
    return 1;
  }
  MetricsRegistry metrics;
  ExecutorPools pools(cfg.io_threads, cfg.blocking_threads);
  HostContext context{cfg.node_name,
                      cfg.data_dir.string(),
                      &kv,
                      &events,
                      &metrics,
                      &pools,
                      cfg.cluster ? &*cfg.cluster : nullptr,
                      cfg.transport_address};

  PluginManagerOptions pm_options;
  pm_options.plugin_dirs.push_back(cfg.data_dir / "plugins");
  for (const auto& d : cfg.plugin_dirs) pm_options.plugin_dirs.push_back(d);
  pm_options.bundled_dir = cfg.bundled_plugin_dir.empty() ? default_bundled_plugin_dir() : cfg.bundled_plugin_dir;
  pm_options.staging_dir = cfg.data_dir / "tmp";
  pm_options.guard_file = cfg.data_dir / "plugin-guard";
  pm_options.inspect_helper = options.inspect_helper.empty() ? default_inspect_helper() : options.inspect_helper;
  pm_options.trusted_keys = std::move(*keys);
  pm_options.require_signatures = cfg.require_signatures;
  PluginManager plugins(std::move(pm_options), catalog, context);

  OperationManager operations(**db, events, pools);
  if (auto interrupted = operations.recover(); !interrupted) {
    spdlog::critical("cannot start: {}", interrupted.error().message);
    return 1;
  } else if (*interrupted > 0) {
    spdlog::warn("{} operations were running when novacrond last stopped; they are marked interrupted", *interrupted);
  }

  if (auto q = plugins.recover_from_crash(); !q) {
    spdlog::critical("cannot start: {}", q.error().message);
    return 1;
  }
  if (auto r = plugins.start_all(cfg.plugins); !r) {
    spdlog::critical("start-up refused: {}", r.error().message);
    plugins.stop_all();
    return 1;
  }

  ApiContext api_context;
  api_context.config = &cfg;
  api_context.plugins = &plugins;
  api_context.catalog = &catalog;
  api_context.metrics = &metrics;
  api_context.events = &events;
  api_context.pools = &pools;
  api_context.operations = &operations;
  for (const auto& p : cfg.plugins) api_context.auth_providers.push_back(p.id);
  PeerMonitor peers(cfg, events, metrics, pools);
  api_context.peers = &peers;
  VmStore vm_store(**db);
  VmService vms(cfg, vm_store, plugins, operations, events);
  api_context.vms = &vms;
  TransferService transfers(cfg, plugins);
  transfers.ensure_policy();  // before the ready line: peers may send as soon as it is printed
  api_context.transfers = &transfers;
  PlacementService placements(cfg, vm_store, vms, plugins, operations, &peers, **db, events);
  api_context.placements = &placements;
  // The reconciler's stats feed the scheduler's usage history (before it starts).
  placements.usage().load();
  vms.set_stats_observer([&placements](const VmRecord& vm, const sdk::VmStats& stats) {
    const auto vcpus = vm.spec.is_object() ? vm.spec.value("vcpus", 0) : 0;
    const auto memory = vm.spec.is_object() ? vm.spec.value("memory_mib", std::int64_t{0}) : 0;
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    placements.usage().observe(vm.id, vcpus, memory, stats, now);
  });
  api_context.started_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  ApiServer server(api_context);
  auto port = server.start();
  if (!port) {
    spdlog::critical("cannot start: {}", port.error().message);
    plugins.stop_all();
    return 1;
  }
  size_t running = plugins.running_count();
  metrics.gauge_set("novacron_plugins_running", "Plugins with a running instance", {}, static_cast<double>(running));
  // The one line operators and scripts look for; stdout, so it is easy to capture.
  std::printf("novacrond ready: listening on %s://%s:%u (node %s, %zu plugins running, data dir %s)\n",
              cfg.tls ? "https" : "http", cfg.listen_address.c_str(), static_cast<unsigned>(*port),
              cfg.node_name.c_str(), running, cfg.data_dir.c_str());
  std::fflush(stdout);
  spdlog::info("ready address={}:{} plugins_running={}", cfg.listen_address, *port, running);
  peers.start();
  vms.start_reconciler(std::chrono::seconds(cfg.vm_reconcile_interval_seconds));
  transfers.start();
  placements.start_periodic_rebalance();
  // Finished transfers calibrate the policies' link models (off the bus's thread).
  events.subscribe([&pools, &placements](const HostEvent& e) {
    if (e.type == "vm.deleted") {
      // Its usage history goes with it.
      pools.blocking().post([&placements, payload = e.payload_json] {
        const auto j = nlohmann::json::parse(payload, nullptr, false);
        if (j.is_object() && j.contains("id") && j["id"].is_string())
          placements.usage().forget(j["id"].get<std::string>());
      });
      return;
    }
    if (e.type != "transfer.succeeded") return;
    pools.blocking().post([&placements, payload = e.payload_json] {
      placements.observe_transfer(nlohmann::json::parse(payload, nullptr, false));
    });
  });

  int sig = wait_for_shutdown_signal();
  spdlog::info("signal {} received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
  placements.stop_periodic_rebalance();
  peers.stop();  // before the blocking pool its probes run on
  vms.stop_reconciler();
  transfers.stop();
  operations.drain(std::chrono::seconds(30));
  vms.detach_drivers();  // no driver event may reach the service once the drivers stop
  plugins.stop_all();
  pools.shutdown();
  // Event stream subscribers own WebSocket sessions: release them while the io_context
  // they belong to still exists (the bus itself outlives the executor pools).
  events.unsubscribe_all();
  spdlog::info("stopped");
  return 0;
}

}  // namespace novacron

// The plugin manager: finds, verifies, loads, starts, stops and tracks plugins.
//
// Load sequence for one plugin (docs/architecture.md has the diagram):
//   locate <dir>/<id>/<version>  ->  state (disabled / quarantined?)  ->  open manifest and
//   library beneath the plugin dir (no symlinks; owner; mode)  ->  pin (bundled plugins on
//   first sight, after inspection in a child)  ->  SHA-256 == pin  ->  signature  ->  ELF
//   sanity + entry symbol (bounded parser)  ->  dlopen via /proc/self/fd/N  ->  descriptor
//   checks (SDK major/minor, toolchain, kind == manifest, id/version == manifest)  ->
//   create -> init(config) -> start().
// Every step that runs plugin code is bracketed by the crash-loop guard's marker.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "host/config/host_config.h"
#include "host/plugins/boot_guard.h"
#include "host/plugins/descriptor_check.h"
#include "host/plugins/installer.h"
#include "host/plugins/plugin_catalog.h"
#include "host/plugins/signature.h"
#include "host/services/plugin_host_services.h"
#include "novacron/sdk/auth_provider.hpp"
#include "novacron/sdk/hypervisor_driver.hpp"
#include "novacron/sdk/migration_transport.hpp"
#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron {

struct PluginManagerOptions {
  std::filesystem::path guard_file;                // crash-loop marker, DATA_DIR/plugin-guard
  std::vector<std::filesystem::path> plugin_dirs;  // search order; the first is the install target
  std::filesystem::path bundled_dir;               // plugins here are pinned on first sight
  std::filesystem::path staging_dir;               // DATA_DIR/tmp
  std::filesystem::path inspect_helper;
  TrustedKeys trusted_keys;
  bool require_signatures = false;
};

// What the manager knows about one configured or loaded plugin.
struct PluginStatus {
  std::string id;
  std::string version;
  std::string kind;
  std::string dir;
  std::string state;    // "running" | "failed" | "disabled" | "quarantined" | "stopped"
  std::string message;  // why it failed / was skipped
  std::string error_code;
  bool required = false;
  std::uint32_t interface_version = 0;
  std::string sdk_version;  // the plugin's, "1.0"
  double load_ms = 0;       // all of it: verify + dlopen + init + start + bookkeeping
  double verify_ms = 0;     // from locating the files to a checked descriptor (dlopen included)
  double start_ms = 0;      // create + init + start
};

// A running plugin instance lent to a caller: while it exists, the instance is not stopped
// or destroyed (disable waits for it). Hold it only for the duration of a call.
template <typename T>
class BorrowedPlugin {
 public:
  BorrowedPlugin() = default;
  BorrowedPlugin(std::shared_ptr<std::shared_mutex> in_use, T* plugin)
      : in_use_(std::move(in_use)), lock_(*in_use_), plugin_(plugin) {}
  T* operator->() const { return plugin_; }
  T* get() const { return plugin_; }
  explicit operator bool() const { return plugin_ != nullptr; }

 private:
  std::shared_ptr<std::shared_mutex> in_use_;
  std::shared_lock<std::shared_mutex> lock_;
  T* plugin_ = nullptr;
};

class PluginManager {
 public:
  PluginManager(PluginManagerOptions options, PluginCatalog& catalog, HostContext context);
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Reads the crash-loop marker left by a previous process that died while running plugin
  // code and quarantines that plugin. Returns the quarantined id, if any.
  Expected<std::optional<std::string>> recover_from_crash();

  // Loads and starts each plugin in order. A failure of an optional plugin is recorded and
  // skipped; a failure of a required one stops and returns its error (plugins already
  // started stay started; the caller stops them).
  Expected<void> start_all(const std::vector<PluginLoadSpec>& specs);

  // Loads and starts one plugin; the error says which check refused it.
  Expected<PluginStatus> load(const PluginLoadSpec& spec);

  // Stops and destroys every running instance, in reverse start order. Libraries stay loaded.
  void stop_all();

  // Runtime enable/disable (state is persisted). Disable stops and destroys the instance.
  // With `keep_one_of` (the auth providers the API consults), disabling the last running one
  // of them is refused ("last_auth_provider"): it would lock every client out of the API.
  Expected<void> disable(const std::string& id, const std::string& reason = "disabled by operator",
                         const std::vector<std::string>* keep_one_of = nullptr);
  // Error "last_auth_provider" when `id` is the only running AuthProvider among `keep_one_of`.
  Expected<void> check_not_last_auth_provider(const std::string& id, const std::vector<std::string>& keep_one_of) const;
  Expected<PluginStatus> enable(const std::string& id);

  // Installs a package while the host runs; refuses to touch a loaded version.
  Expected<InstallResult> install(const std::filesystem::path& source);
  // Removes an installed version (files and pin). Refused while that version runs, and for
  // bundled plugins (they belong to the host's installation). Errors: "not_found",
  // "plugin_loaded", "bundled", "io".
  Expected<void> remove(const std::string& id, const std::string& version);

  std::vector<PluginStatus> list() const;
  // Changes whenever anything list(), status() or the catalog would show changes: lets the
  // API cache rendered answers.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::optional<PluginStatus> status(const std::string& id) const;
  size_t running_count() const;

  // Typed access for the host's subsystems; empty when not running or of another kind.
  BorrowedPlugin<sdk::SchedulingPolicy> scheduling_policy(const std::string& id) const;
  BorrowedPlugin<sdk::AuthProvider> auth_provider(const std::string& id) const;
  BorrowedPlugin<sdk::HypervisorDriver> hypervisor_driver(const std::string& id) const;
  // The running migration transport: the first of its kind in start order (plugins.load
  // order); `id` receives its plugin id.
  BorrowedPlugin<sdk::MigrationTransport> migration_transport(std::string* id = nullptr) const;

 private:
  struct Located;
  struct Instance;
  struct Record;

  Expected<Located> locate(const std::string& id, const std::optional<std::string>& version) const;
  Expected<CatalogEntry> ensure_pinned(const Located& loc);
  Expected<PluginStatus> load_locked(const PluginLoadSpec& spec);  // lifecycle_mutex_ held
  // `enter_phase` records the crash-loop marker before each step that runs plugin code.
  Expected<std::shared_ptr<Instance>> instantiate(const DescriptorInfo& descriptor, const PluginLoadSpec& spec,
                                                  const std::function<Expected<void>(const char* phase)>& enter_phase);
  // Takes the instance out of records_ (no new borrower can find it) and sets the state.
  std::shared_ptr<Instance> take_instance(const std::string& id, const std::string& state, const std::string& message);
  void stop_instance(const std::shared_ptr<Instance>& instance, const std::string& id);
  void update_running_gauge();
  template <typename T>
  BorrowedPlugin<T> borrow(const std::string& id, std::uint32_t kind) const;
  void record_failure(const PluginLoadSpec& spec, const Error& error, const std::string& state);
  void publish(const std::string& type, const std::string& id, const std::string& payload_json);

  PluginManagerOptions options_;
  PluginCatalog& catalog_;
  HostContext context_;
  std::optional<BootGuard> guard_;  // absent when the marker file cannot be opened (logged)
  // Serialises loads, enables, disables and stops (long: they run plugin code).
  std::mutex lifecycle_mutex_;
  // Guards records_ and start_order_; held only briefly, so lookups never wait for a load.
  mutable std::mutex mutex_;
  std::atomic<std::uint64_t> generation_{1};
  std::map<std::string, std::unique_ptr<Record>> records_;  // by id
  std::vector<std::string> start_order_;
};

}  // namespace novacron

#include "host/plugins/plugin_manager.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "host/common/build_id.h"
#include "host/common/sha256.h"
#include "host/plugins/elf_check.h"
#include "host/plugins/library_loader.h"
#include "host/plugins/manifest.h"
#include "host/plugins/plugin_file.h"

namespace novacron {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct PluginManager::Located {
  fs::path root;  // the plugin dir
  std::string id;
  std::string version;
  fs::path rel;  // <id>/<version>
  bool bundled = false;
};

struct PluginManager::Instance {
  DescriptorInfo descriptor;
  // Shared by calls into the instance (BorrowedPlugin), exclusive while it is stopped.
  std::shared_ptr<std::shared_mutex> in_use = std::make_shared<std::shared_mutex>();
  void* raw = nullptr;  // as returned by create(): the kind's interface
  sdk::PluginInstance* base = nullptr;
  std::unique_ptr<PluginHostServices> services;
  bool started = false;
};

struct PluginManager::Record {
  PluginStatus status;
  PluginLoadSpec spec;
  std::optional<DescriptorInfo> library;  // set once the library is loaded (never unloaded)
  std::shared_ptr<Instance> instance;
};

namespace {

// Clears the crash-loop marker when a step that ran plugin code returns, however it returns.
class GuardScope {
 public:
  explicit GuardScope(std::optional<BootGuard>& guard) : guard_(guard) {}
  Expected<void> enter(const std::string& id, const std::string& version, const std::string& phase) {
    if (!guard_) return {};
    active_ = true;
    return guard_->enter(id, version, phase);
  }
  // Clears now (before the manager's lock is released), or at destruction on early returns.
  void clear() {
    if (active_) (void)guard_->clear();
    active_ = false;
  }
  ~GuardScope() { clear(); }

 private:
  std::optional<BootGuard>& guard_;
  bool active_ = false;
};

sdk::PluginInstance* as_plugin_instance(std::uint32_t kind, void* raw) {
  switch (kind) {
    case NOVACRON_KIND_SCHEDULING_POLICY:
      return static_cast<sdk::SchedulingPolicy*>(raw);
    case NOVACRON_KIND_AUTH_PROVIDER:
      return static_cast<sdk::AuthProvider*>(raw);
    case NOVACRON_KIND_HYPERVISOR_DRIVER:
      return static_cast<sdk::HypervisorDriver*>(raw);
    case NOVACRON_KIND_MIGRATION_TRANSPORT:
      return static_cast<sdk::MigrationTransport*>(raw);
    default:
      return nullptr;
  }
}

std::string sdk_version_of(const DescriptorInfo& d) {
  return std::to_string(d.sdk_major) + "." + std::to_string(d.sdk_minor);
}

Error with_context(const std::string& id, const Error& e) { return Error{e.code, "plugin " + id + ": " + e.message}; }

}  // namespace

PluginManager::PluginManager(PluginManagerOptions options, PluginCatalog& catalog, HostContext context)
    : options_(std::move(options)), catalog_(catalog), context_(std::move(context)) {
  if (options_.guard_file.empty()) options_.guard_file = options_.staging_dir.parent_path() / "plugin-guard";
  auto guard = BootGuard::open(options_.guard_file);
  if (guard) {
    guard_.emplace(std::move(*guard));
  } else {
    spdlog::error("crash-loop guard disabled: {}", guard.error().message);
  }
}

PluginManager::~PluginManager() { stop_all(); }

void PluginManager::publish(const std::string& type, const std::string& id, const std::string& payload_json) {
  if (context_.events != nullptr) context_.events->publish(type, "plugin/" + id, "host", payload_json);
}

Expected<std::optional<std::string>> PluginManager::recover_from_crash() {
  if (!guard_) return std::optional<std::string>();
  auto marker = guard_->read();
  if (!marker) return tl::unexpected(marker.error());
  if (!*marker) return std::optional<std::string>();
  // Any marker found here was left by a process that died: the data dir lock guarantees that
  // no other live process uses this catalog (pids are not compared: in a container every
  // start may be pid 1).
  const BootGuardRecord& m = **marker;
  if (m.plugin_id.empty()) {
    spdlog::warn("crash-loop marker {} is unreadable; ignoring it", options_.guard_file.string());
    if (auto r = guard_->clear(); !r) return tl::unexpected(r.error());
    return std::optional<std::string>();
  }
  std::string reason = "novacrond (pid " + std::to_string(m.pid) + ") died while running the " + m.phase + " step of " +
                       m.plugin_id + " " + m.version +
                       "; quarantined to stop a crash loop. Fix or upgrade the plugin, then run "
                       "`novacron plugin enable " +
                       m.plugin_id + " --data-dir DATA_DIR` while the host is stopped";
  if (auto r = catalog_.set_state(m.plugin_id, PluginState::kQuarantined, reason); !r) return tl::unexpected(r.error());
  generation_.fetch_add(1, std::memory_order_release);
  if (auto r = guard_->clear(); !r) return tl::unexpected(r.error());
  spdlog::error("plugin quarantined id={} version={} phase={} reason=\"{}\"", m.plugin_id, m.version, m.phase, reason);
  publish("plugin.quarantined", m.plugin_id,
          json{{"id", m.plugin_id}, {"version", m.version}, {"phase", m.phase}, {"reason", reason}}.dump(
              -1, ' ', false, json::error_handler_t::replace));
  return std::optional<std::string>(m.plugin_id);
}

Expected<PluginManager::Located> PluginManager::locate(const std::string& id,
                                                       const std::optional<std::string>& version) const {
  std::vector<std::pair<fs::path, bool>> dirs;
  for (const auto& d : options_.plugin_dirs) dirs.emplace_back(d, false);
  if (!options_.bundled_dir.empty()) dirs.emplace_back(options_.bundled_dir, true);

  std::vector<Located> found;
  std::string searched;
  for (const auto& [dir, bundled] : dirs) {
    searched += (searched.empty() ? "" : ", ") + dir.string();
    std::error_code ec;
    fs::path id_dir = dir / id;
    if (!fs::is_directory(fs::symlink_status(id_dir, ec)) && !fs::is_symlink(fs::symlink_status(id_dir, ec))) continue;
    for (fs::directory_iterator it(id_dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string v = it->path().filename().string();
      if (!is_valid_plugin_version(v)) continue;
      if (version && v != *version) continue;
      found.push_back(Located{dir, id, v, fs::path(id) / v, bundled});
    }
  }
  if (found.empty()) {
    return make_error("not_found", "plugin " + id + (version ? " " + *version : std::string()) +
                                       " is not installed in any plugin dir (searched: " + searched + ")");
  }
  std::sort(found.begin(), found.end(),
            [](const Located& a, const Located& b) { return compare_versions(a.version, b.version) > 0; });
  const Located& best = found.front();
  for (size_t i = 1; i < found.size(); ++i) {
    if (found[i].version == best.version) {
      return make_error("duplicate", "plugin " + id + " " + best.version + " is present in two plugin dirs (" +
                                         (best.root / best.rel).string() + " and " +
                                         (found[i].root / found[i].rel).string() + "); remove one of them");
    }
  }
  return best;
}

Expected<CatalogEntry> PluginManager::ensure_pinned(const Located& loc) {
  fs::path dir = loc.root / loc.rel;
  auto pinned = catalog_.find(loc.id, loc.version);
  if (!pinned) return tl::unexpected(pinned.error());
  // A bundled plugin pinned by another build of the host (an upgrade), or found in another
  // bundled dir (the same data dir used by an installed host after the build tree's), comes
  // with that host: pin anew. Under the same host build and dir, a changed bundled file is
  // refused like any other.
  const bool host_upgraded =
      *pinned && (*pinned)->source == "bundled" && loc.bundled &&
      ((*pinned)->pinned_by != executable_build_id() || (*pinned)->pinned_by.empty() || (*pinned)->dir != dir.string());
  if (*pinned && !host_upgraded) {
    if ((*pinned)->dir != dir.string()) {
      return make_error("pin_location_mismatch", loc.id + " " + loc.version + " is pinned at " + (*pinned)->dir +
                                                     " but was found at " + dir.string());
    }
    return **pinned;
  }
  if (!loc.bundled) {
    return make_error("not_pinned", dir.string() +
                                        " has no pinned SHA-256 in the catalog; install it with "
                                        "`novacron plugin install` instead of copying it");
  }
  // A bundled plugin seen for the first time: inspect it in a child, then pin it.
  PackageCheckOptions checks;
  checks.inspect_helper = options_.inspect_helper;
  checks.trusted_keys = &options_.trusted_keys;
  checks.require_signature = options_.require_signatures;
  PackageReport report = check_plugin_package(dir, checks);
  if (const CheckVerdict* f = report.first_failure(); f != nullptr) {
    return make_error(f->code, f->name + " check failed: " + f->detail);
  }
  CatalogEntry entry{loc.id,
                     loc.version,
                     dir.string(),
                     report.manifest->library,
                     report.sha256,
                     report.manifest_sha256,
                     report.manifest->kind,
                     "bundled",
                     executable_build_id(),
                     0};
  auto r = host_upgraded ? catalog_.repin(entry) : catalog_.pin(entry);
  if (!r) return tl::unexpected(r.error());
  spdlog::info("bundled plugin pinned id={} version={} sha256={}{}", loc.id, loc.version, report.sha256,
               host_upgraded ? " (host build changed)" : "");
  return entry;
}

Expected<PluginStatus> PluginManager::load(const PluginLoadSpec& spec) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  return load_locked(spec);
}

// Runs with lifecycle_mutex_ held (loads are serialised); mutex_ is taken only for short
// reads and writes of records_, so that lookups on I/O threads never wait for a load.
Expected<PluginStatus> PluginManager::load_locked(const PluginLoadSpec& spec) {
  auto t0 = Clock::now();
  std::optional<DescriptorInfo> previous_library;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = records_.find(spec.id); it != records_.end()) {
      if (it->second->instance) {
        Error e{"duplicate_id", "plugin " + spec.id + " is already loaded (version " + it->second->status.version +
                                    " from " + it->second->status.dir + ")"};
        spdlog::warn("plugin not loaded id={} code={} reason=\"{}\"", spec.id, e.code, e.message);
        publish("plugin.failed", spec.id,
                json{{"id", spec.id}, {"code", e.code}, {"message", e.message}}.dump(-1, ' ', false,
                                                                                     json::error_handler_t::replace));
        return tl::unexpected(e);
      }
      previous_library = it->second->library;
    }
  }
  auto fail = [&](const Error& e, const std::string& state = "failed") -> Expected<PluginStatus> {
    record_failure(spec, e, state);
    return tl::unexpected(with_context(spec.id, e));
  };

  auto state = catalog_.state(spec.id);
  if (!state) return fail(state.error());
  if (state->state == PluginState::kDisabled) {
    return fail(Error{"disabled", "disabled by the operator: " + state->reason}, "disabled");
  }
  if (state->state == PluginState::kQuarantined) return fail(Error{"quarantined", state->reason}, "quarantined");

  auto loc = locate(spec.id, spec.version);
  if (!loc) return fail(loc.error());
  auto entry = ensure_pinned(*loc);
  if (!entry) return fail(entry.error());

  // The version folder is opened once; its files are opened relative to it.
  auto folder = open_plugin_dir(loc->root, loc->rel);
  if (!folder) return fail(folder.error());
  // Manifest: unchanged since it was pinned, and describing this folder.
  auto manifest_file = open_in_dir(*folder, "plugin.json");
  if (!manifest_file) return fail(manifest_file.error());
  auto manifest_text = read_opened_file(*manifest_file, kMaxManifestBytes);
  if (!manifest_text) return fail(manifest_text.error());
  if (to_hex(sha256_bytes(*manifest_text)) != entry->manifest_sha256) {
    return fail(Error{"manifest_changed", manifest_file->path.string() + " changed after it was installed"});
  }
  // Same bytes as pinned: its contents (id and version equal to the folder's, library, kind)
  // were checked when it was pinned, so it is not parsed again.

  // Library: the same open file is checked, hashed and loaded.
  auto lib = open_in_dir(*folder, entry->library);
  if (!lib) return fail(lib.error());
  auto digest = sha256_fd(lib->fd.get());
  if (!digest) return fail(digest.error());
  if (to_hex(*digest) != entry->sha256) {
    return fail(Error{"sha256_mismatch", lib->path.string() + " hashes to " + to_hex(*digest) + " but " +
                                             entry->sha256 +
                                             " was pinned at install: the file changed "
                                             "after it was installed (reinstall it as a new version)"});
  }
  if (!options_.trusted_keys.empty() || options_.require_signatures) {
    auto sig_file = open_in_dir(*folder, entry->library + ".sig");
    if (!sig_file) {
      if (sig_file.error().code != "not_found" || options_.require_signatures) {
        return fail(
            sig_file.error().code == "not_found"
                ? Error{"signature_missing", "signatures are required and " + entry->library + ".sig is missing"}
                : sig_file.error());
      }
    } else {
      auto text = read_opened_file(*sig_file, 4096);
      if (!text) return fail(text.error());
      auto raw = decode_signature(*text, sig_file->path.string());
      if (!raw) return fail(raw.error());
      auto signer = options_.trusted_keys.verify(plugin_signature_message(spec.id, loc->version, entry->sha256), *raw);
      if (!signer) return fail(signer.error());
    }
  }
  auto elf = check_plugin_elf(lib->fd.get());
  if (!elf) return fail(elf.error());

  PluginStatus status{
      spec.id, loc->version, entry->kind, (loc->root / loc->rel).string(), "loading", "", "", spec.required, 0, "", 0};
  std::optional<DescriptorInfo> library = previous_library;

  GuardScope guard(guard_);
  if (!library || library->version != loc->version) {
    if (library) {
      return fail(Error{"restart_required", "version " + library->version +
                                                " of this plugin is loaded in this process; a different version "
                                                "loads after a restart"});
    }
    if (auto r = guard.enter(spec.id, loc->version, "load"); !r) return fail(r.error());
    auto loaded = load_verified_library(std::move(*lib));
    if (!loaded) return fail(loaded.error());
    auto info = read_descriptor(loaded->descriptor);
    if (!info) return fail(info.error());
    if (auto c = check_compatibility(*info, sdk::current_toolchain()); !c) return fail(c.error());
    if (info->id != entry->id || info->version != entry->version) {
      return fail(Error{"manifest_mismatch", "the library says " + info->id + " " + info->version + ", its manifest " +
                                                 entry->id + " " + entry->version});
    }
    if (static_cast<std::uint32_t>(kind_from_name(entry->kind)) != info->kind) {
      return fail(Error{"kind_mismatch", std::string("the library is a ") + kind_name(info->kind) +
                                             " but its manifest declares kind " + entry->kind});
    }
    library = *info;
    // The library stays loaded from here on, whatever happens to the instance.
    std::lock_guard<std::mutex> lock(mutex_);
    auto& rec_ptr = records_[spec.id];
    if (!rec_ptr) rec_ptr = std::make_unique<Record>();
    rec_ptr->library = library;
  }
  auto t_verified = Clock::now();
  auto enter_phase = [&](const char* phase) { return guard.enter(spec.id, loc->version, phase); };
  auto instance = instantiate(*library, spec, enter_phase);
  if (!instance) return fail(instance.error());
  status.verify_ms = std::chrono::duration<double, std::milli>(t_verified - t0).count();
  status.start_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_verified).count();
  status.state = "running";
  status.interface_version = library->interface_version;
  status.sdk_version = sdk_version_of(*library);
  status.load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& rec_ptr = records_[spec.id];
    if (!rec_ptr) rec_ptr = std::make_unique<Record>();
    rec_ptr->spec = spec;
    rec_ptr->library = library;
    rec_ptr->instance = std::move(*instance);
    rec_ptr->status = status;
    if (std::find(start_order_.begin(), start_order_.end(), spec.id) == start_order_.end()) {
      start_order_.push_back(spec.id);
    }
    generation_.fetch_add(1, std::memory_order_release);
  }
  guard.clear();
  update_running_gauge();

  spdlog::info("plugin loaded id={} version={} kind={} ms={:.1f}", status.id, status.version, status.kind,
               status.load_ms);
  if (context_.metrics != nullptr) {
    context_.metrics->histogram_observe("novacron_plugin_load_seconds", "Time to verify, load and start a plugin",
                                        {{"plugin", status.id}}, status.load_ms / 1000.0);
  }
  publish("plugin.loaded", status.id,
          json{{"id", status.id}, {"version", status.version}, {"kind", status.kind}, {"load_ms", status.load_ms}}.dump(
              -1, ' ', false, json::error_handler_t::replace));
  return status;
}

Expected<std::shared_ptr<PluginManager::Instance>> PluginManager::instantiate(
    const DescriptorInfo& d, const PluginLoadSpec& spec,
    const std::function<Expected<void>(const char*)>& enter_phase) {
  auto inst = std::make_shared<Instance>();
  inst->descriptor = d;
  if (auto r = enter_phase("init"); !r) return tl::unexpected(r.error());
  inst->raw = d.create();
  inst->base = inst->raw != nullptr ? as_plugin_instance(d.kind, inst->raw) : nullptr;
  if (inst->base == nullptr) return make_error("create_failed", "the plugin's create function returned nothing");
  inst->services = std::make_unique<PluginHostServices>(context_, d.id, spec.config_json);
  sdk::Status s = inst->base->init(*inst->services, spec.config_json);
  if (!s) {
    inst->services->close_executors();
    d.destroy(inst->raw);
    std::string where = s.code() == sdk::StatusCode::kInvalidArgument && !spec.config_pointer.empty()
                            ? " in its config section " + spec.config_pointer
                            : "";
    return make_error("init_failed", std::string("init failed (") + sdk::status_code_name(s.code()) + ")" + where +
                                         ": " + s.message());
  }
  if (auto r = enter_phase("start"); !r) return tl::unexpected(r.error());
  s = inst->base->start();
  if (!s) {
    inst->services->close_executors();
    d.destroy(inst->raw);
    return make_error("start_failed",
                      std::string("start failed (") + sdk::status_code_name(s.code()) + "): " + s.message());
  }
  inst->started = true;
  return inst;
}

void PluginManager::record_failure(const PluginLoadSpec& spec, const Error& error, const std::string& state) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& rec_ptr = records_[spec.id];
    if (!rec_ptr) rec_ptr = std::make_unique<Record>();
    Record& rec = *rec_ptr;
    rec.spec = spec;
    rec.status.id = spec.id;
    rec.status.required = spec.required;
    if (rec.status.version.empty() && spec.version) rec.status.version = *spec.version;
    rec.status.state = state;
    rec.status.message = error.message;
    rec.status.error_code = error.code;
    generation_.fetch_add(1, std::memory_order_release);
  }
  auto level = state == "failed" ? spdlog::level::err : spdlog::level::warn;
  spdlog::log(level, "plugin not loaded id={} state={} code={} reason=\"{}\"", spec.id, state, error.code,
              error.message);
  if (context_.metrics != nullptr) {
    context_.metrics->counter_add("novacron_plugin_load_failures_total", "Plugins that could not be loaded",
                                  {{"code", error.code}}, 1);
  }
  publish("plugin.failed", spec.id,
          json{{"id", spec.id}, {"state", state}, {"code", error.code}, {"message", error.message}}.dump(
              -1, ' ', false, json::error_handler_t::replace));
}

Expected<void> PluginManager::start_all(const std::vector<PluginLoadSpec>& specs) {
  for (const auto& spec : specs) {
    auto r = load(spec);
    if (!r && spec.required) {
      return make_error(r.error().code, "required " + r.error().message);
    }
  }
  return {};
}

void PluginManager::stop_instance(const std::shared_ptr<Instance>& inst, const std::string& id) {
  if (!inst) return;
  // Waits until calls that borrowed the instance (BorrowedPlugin) have returned; the
  // instance was already taken out of records_, so no new call can borrow it.
  std::unique_lock<std::shared_mutex> exclusive(*inst->in_use);
  if (inst->started) inst->base->stop();
  inst->services->close_executors();
  inst->descriptor.destroy(inst->raw);
  inst->raw = nullptr;
  inst->base = nullptr;
  spdlog::info("plugin stopped id={} version={}", id, inst->descriptor.version);
}

std::shared_ptr<PluginManager::Instance> PluginManager::take_instance(const std::string& id, const std::string& state,
                                                                      const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end()) return nullptr;
  it->second->status.state = state;
  if (!message.empty()) it->second->status.message = message;
  generation_.fetch_add(1, std::memory_order_release);
  return std::move(it->second->instance);
}

void PluginManager::stop_all() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  std::vector<std::string> order;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    order.assign(start_order_.rbegin(), start_order_.rend());
  }
  for (const auto& id : order) {
    auto inst = take_instance(id, "stopped", "");
    stop_instance(inst, id);
  }
  update_running_gauge();
}

Expected<void> PluginManager::check_not_last_auth_provider(const std::string& id,
                                                           const std::vector<std::string>& keep_one_of) const {
  if (!borrow<sdk::AuthProvider>(id, NOVACRON_KIND_AUTH_PROVIDER)) return {};
  for (const auto& other : keep_one_of) {
    if (other != id && borrow<sdk::AuthProvider>(other, NOVACRON_KIND_AUTH_PROVIDER)) return {};
  }
  return make_error("last_auth_provider", "disabling " + id +
                                              " would leave no auth provider running and lock every client out "
                                              "of the API; load another one first");
}

Expected<void> PluginManager::disable(const std::string& id, const std::string& reason,
                                      const std::vector<std::string>* keep_one_of) {
  {
    std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
    if (keep_one_of != nullptr) {
      if (auto r = check_not_last_auth_provider(id, *keep_one_of); !r) return r;
    }
    if (auto r = catalog_.set_state(id, PluginState::kDisabled, reason); !r) return r;
    generation_.fetch_add(1, std::memory_order_release);
    stop_instance(take_instance(id, "disabled", reason), id);
  }
  update_running_gauge();
  publish("plugin.disabled", id,
          json{{"id", id}, {"reason", reason}}.dump(-1, ' ', false, json::error_handler_t::replace));
  return {};
}

Expected<PluginStatus> PluginManager::enable(const std::string& id) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  PluginLoadSpec spec;
  spec.id = id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = records_.find(id); it != records_.end()) {
      if (it->second->instance) return it->second->status;  // already running: nothing to do
      spec = it->second->spec;
    }
  }
  if (auto r = catalog_.set_state(id, PluginState::kEnabled, ""); !r) return tl::unexpected(r.error());
  generation_.fetch_add(1, std::memory_order_release);
  publish("plugin.enabled", id, json{{"id", id}}.dump(-1, ' ', false, json::error_handler_t::replace));
  return load_locked(spec);
}

void PluginManager::update_running_gauge() {
  if (context_.metrics != nullptr) {
    context_.metrics->gauge_set("novacron_plugins_running", "Plugins with a running instance", {},
                                static_cast<double>(running_count()));
  }
}

Expected<InstallResult> PluginManager::install(const fs::path& source) {
  InstallOptions options;
  options.plugins_dir = options_.plugin_dirs.front();
  options.staging_dir = options_.staging_dir;
  options.checks.inspect_helper = options_.inspect_helper;
  options.checks.trusted_keys = &options_.trusted_keys;
  options.checks.require_signature = options_.require_signatures;
  options.precheck = [this](const PluginManifest& m) -> Expected<void> {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(m.id);
    if (it != records_.end() && it->second->library && it->second->library->version == m.version) {
      return make_error("plugin_loaded", m.id + " " + m.version +
                                             " is loaded; a loaded version is never replaced in place "
                                             "(build and install it as a new version)");
    }
    return {};
  };
  // Under the lifecycle lock: two uploads of one version must not race to the final rename.
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  auto installed = install_plugin(source, options, catalog_);
  generation_.fetch_add(1, std::memory_order_release);
  return installed;
}

Expected<void> PluginManager::remove(const std::string& id, const std::string& version) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  auto pin = catalog_.find(id, version);
  if (!pin) return tl::unexpected(pin.error());
  if (!*pin) return make_error("not_found", id + " " + version + " is not installed");
  if ((*pin)->source == "bundled") {
    return make_error("bundled",
                      id + " " + version + " is bundled with the host; it goes away with the host's installation");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(id);
    if (it != records_.end() && it->second->instance && it->second->status.version == version) {
      return make_error("plugin_loaded", id + " " + version + " is running; disable it first");
    }
  }
  // Move the folder aside first (atomic), then drop the pin; put it back if that fails, so
  // that the catalog and the files never disagree.
  fs::path dir = (*pin)->dir;
  std::string aside = (options_.staging_dir / ("removed-" + id + "-" + version + "-XXXXXX")).string();
  if (::mkdtemp(aside.data()) == nullptr) return make_error("io", aside + ": " + std::strerror(errno));
  fs::path target = fs::path(aside) / "plugin";
  if (::rename(dir.c_str(), target.c_str()) != 0) {
    std::error_code ec;
    fs::remove_all(aside, ec);
    return make_error("io", "cannot move " + dir.string() + " aside: " + std::strerror(errno));
  }
  if (auto r = catalog_.remove(id, version); !r) {
    if (::rename(target.c_str(), dir.c_str()) != 0) {
      spdlog::error("plugin {} {}: its pin could not be dropped and its folder could not be put back from {}: {}", id,
                    version, target.string(), std::strerror(errno));
    }
    return r;
  }
  generation_.fetch_add(1, std::memory_order_release);
  std::error_code ec;
  fs::remove_all(aside, ec);
  spdlog::info("plugin removed id={} version={}", id, version);
  publish("plugin.removed", id,
          json{{"id", id}, {"version", version}}.dump(-1, ' ', false, json::error_handler_t::replace));
  return {};
}

std::vector<PluginStatus> PluginManager::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PluginStatus> out;
  for (const auto& [id, rec] : records_) out.push_back(rec->status);
  return out;
}

std::optional<PluginStatus> PluginManager::status(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  return it->second->status;
}

size_t PluginManager::running_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [id, rec] : records_) n += rec->instance ? 1 : 0;
  return n;
}

template <typename T>
BorrowedPlugin<T> PluginManager::borrow(const std::string& id, std::uint32_t kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end() || !it->second->instance || it->second->instance->descriptor.kind != kind) return {};
  const auto& inst = it->second->instance;
  // create() returned the kind's interface pointer, so the cast restores exactly that type.
  return BorrowedPlugin<T>(inst->in_use, static_cast<T*>(inst->raw));
}

BorrowedPlugin<sdk::SchedulingPolicy> PluginManager::scheduling_policy(const std::string& id) const {
  return borrow<sdk::SchedulingPolicy>(id, NOVACRON_KIND_SCHEDULING_POLICY);
}

BorrowedPlugin<sdk::AuthProvider> PluginManager::auth_provider(const std::string& id) const {
  return borrow<sdk::AuthProvider>(id, NOVACRON_KIND_AUTH_PROVIDER);
}

BorrowedPlugin<sdk::HypervisorDriver> PluginManager::hypervisor_driver(const std::string& id) const {
  return borrow<sdk::HypervisorDriver>(id, NOVACRON_KIND_HYPERVISOR_DRIVER);
}

BorrowedPlugin<sdk::MigrationTransport> PluginManager::migration_transport(std::string* id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& candidate : start_order_) {
    auto it = records_.find(candidate);
    if (it == records_.end() || !it->second->instance ||
        it->second->instance->descriptor.kind != NOVACRON_KIND_MIGRATION_TRANSPORT) {
      continue;
    }
    if (id != nullptr) *id = candidate;
    const auto& inst = it->second->instance;
    return BorrowedPlugin<sdk::MigrationTransport>(inst->in_use, static_cast<sdk::MigrationTransport*>(inst->raw));
  }
  return {};
}

}  // namespace novacron

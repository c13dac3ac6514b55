// Plugin loading costs, measured against a bare dlopen loop over the same kind of files in
// the same run (docs/performance.md):
//   * BM_LoadVerifiedVsBareDlopen: per iteration, 20 fresh copies of a ~280 KiB plugin are
//     loaded twice over: once with a bare dlopen + entry call, once through the plugin
//     manager (path/owner/mode checks, SHA-256 against the pin, ELF check, dlopen through
//     /proc/self/fd, descriptor checks, crash-guard writes, create/init/start). Counters give
//     each phase per plugin, SHA-256 alone, and the ratio verified/bare.
//   * BM_StartupToReady/<n>: novacrond from exec to its ready line, with no plugin (the
//     daemon's own start-up), the 3 bundled plugins, or 20 installed copies of the realistic
//     plugin.
// Libraries are never unloaded (as in the host), so each iteration uses new files.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "host/common/sha256.h"
#include "host/plugins/plugin_manager.h"
#include "host/state/schema.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace novacron {
namespace {

using Clock = std::chrono::steady_clock;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr int kPlugins = 20;

std::string bulky_id(int i) { return "io.novacron.bench.bulky-" + std::to_string(i); }

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

void BM_LoadVerifiedVsBareDlopen(benchmark::State& state) {
  TempDir dir;
  EventBus events;
  MetricsRegistry metrics;
  ExecutorPools pools(1, 1);
  double bare_ms = 0, verified_ms = 0, hash_ms = 0, verify_only_ms = 0;
  std::int64_t bytes = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // Fresh copies each round (a loaded library is never loaded again): one set for the bare
    // loop, one placed in a new host data dir and pinned as `novacron plugin install` does.
    fs::path round_dir = dir / ("round-" + std::to_string(round++));
    fs::create_directories(round_dir / "bare");
    fs::create_directories(round_dir / "tmp");
    auto db = std::move(*open_host_database(round_dir));
    PluginCatalog catalog(*db);
    KvStore kv(*db);
    std::vector<fs::path> bare_files;
    for (int i = 1; i <= kPlugins; ++i) {
      fs::path lib = testing::fixture(bulky_id(i)) / ("libtp_bulky_" + std::to_string(i) + ".so");
      bare_files.push_back(round_dir / "bare" / lib.filename());
      fs::copy_file(lib, bare_files.back());
      fs::path dest = testing::copy_fixture(bulky_id(i), round_dir / "plugins");
      CatalogEntry e{bulky_id(i),
                     "1.0.0",
                     dest.string(),
                     lib.filename().string(),
                     to_hex(*sha256_file((dest / lib.filename()).string())),
                     to_hex(sha256_bytes(testing::read_file(dest / "plugin.json"))),
                     "scheduling_policy",
                     "installed",
                     "",
                     0};
      (void)catalog.pin(e);
      bytes += static_cast<std::int64_t>(fs::file_size(lib));
    }
    PluginManagerOptions o;
    o.plugin_dirs = {round_dir / "plugins"};
    o.staging_dir = round_dir / "tmp";
    o.inspect_helper = testing::inspect_helper();
    PluginManager manager(std::move(o), catalog,
                          HostContext{"bench", round_dir.string(), &kv, &events, &metrics, &pools});
    state.ResumeTiming();

    auto t0 = Clock::now();
    for (const auto& f : bare_files) {
      void* h = ::dlopen(f.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) {
        state.SkipWithError(::dlerror());
        break;
      }
      auto* alias = static_cast<const void* const*>(::dlsym(h, NOVACRON_PLUGIN_ENTRY_SYMBOL));
      auto entry = reinterpret_cast<NovacronEntryFn>(const_cast<void*>(*alias));
      benchmark::DoNotOptimize(entry());
    }
    bare_ms += ms_since(t0);

    t0 = Clock::now();
    for (const auto& f : bare_files) benchmark::DoNotOptimize(sha256_file(f.string()));
    hash_ms += ms_since(t0);

    t0 = Clock::now();
    int loaded = 0;
    for (int i = 1; i <= kPlugins; ++i) {
      PluginLoadSpec spec;
      spec.id = bulky_id(i);
      auto r = manager.load(spec);
      loaded += r.has_value() ? 1 : 0;
      if (!r) {
        state.SkipWithError(r.error().message.c_str());
      } else {
        verify_only_ms += r->verify_ms;
      }
    }
    verified_ms += ms_since(t0);
    benchmark::DoNotOptimize(loaded);
    state.PauseTiming();
    manager.stop_all();
    state.ResumeTiming();
  }
  double n = static_cast<double>(state.iterations()) * kPlugins;
  state.counters["bare_dlopen_ms_per_plugin"] = bare_ms / n;
  state.counters["sha256_ms_per_plugin"] = hash_ms / n;
  state.counters["verified_load_ms_per_plugin"] = verified_ms / n;
  state.counters["ratio_verified_to_bare"] = verified_ms / bare_ms;
  state.counters["overhead_in_hashes"] = (verified_ms - bare_ms) / hash_ms;
  // Verification alone (files, pin, hash, signature, ELF, dlopen, descriptor), without the
  // plugin's own init/start and the host's bookkeeping, in units of one SHA-256 of the file.
  state.counters["verify_ms_per_plugin"] = verify_only_ms / n;
  state.counters["verify_overhead_in_hashes"] = (verify_only_ms - bare_ms) / hash_ms;
  state.counters["plugin_kib"] = static_cast<double>(bytes) / 1024.0 / n;
}
BENCHMARK(BM_LoadVerifiedVsBareDlopen)->Iterations(15)->Unit(benchmark::kMillisecond);

// Spawns novacrond and returns the time until its ready line, then stops it with SIGTERM.
double time_to_ready(const fs::path& config, std::string& error) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::string exe = (testing::bin_dir() / "novacrond").string();
  std::string cfg = config.string();
  char* argv[] = {exe.data(), const_cast<char*>("--config"), cfg.data(), nullptr};
  auto t0 = Clock::now();
  pid_t pid = -1;
  ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipefd[1]);
  std::string out;
  char buf[512];
  double ms = -1;
  for (;;) {
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) break;
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.find("novacrond ready") != std::string::npos) {
      ms = ms_since(t0);
      break;
    }
  }
  ::close(pipefd[0]);
  if (ms < 0) error = "novacrond did not become ready: " + out;
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return ms;
}

void BM_StartupToReady(benchmark::State& state) {
  const bool twenty = state.range(0) == kPlugins;
  TempDir dir;
  std::string load;
  if (twenty) {
    // 20 plugins installed once (the install pins them); every start verifies all of them.
    for (int i = 1; i <= kPlugins; ++i) {
      auto r = testing::run({(testing::bin_dir() / "novacron").string(), "plugin", "install", "--data-dir",
                             (dir / "data").string(), testing::fixture(bulky_id(i)).string()});
      if (r.exit_code != 0) state.SkipWithError(r.err.c_str());
      load += std::string(load.empty() ? "" : ",") + R"({"id": ")" + bulky_id(i) + R"(", "required": true})";
    }
  } else if (state.range(0) == 3) {
    load = R"({"id": "io.novacron.policy.resource-fit", "required": true}, {"id": "io.novacron.policy.binpack"},
              {"id": "io.novacron.policy.spread"})";
  }
  fs::path cfg = dir / "novacrond.json";
  testing::write_file(cfg, R"({"data_dir": ")" + (dir / "data").string() +
                               R"(", "listen": {"port": 0}, "log": {"level": "warn"}, "plugins": {"load": [)" + load +
                               "]}}");
  std::string error;
  if (time_to_ready(cfg, error) < 0) state.SkipWithError(error.c_str());  // first start pins bundled plugins
  double total = 0;
  for (auto _ : state) {
    double ms = time_to_ready(cfg, error);
    if (ms < 0) state.SkipWithError(error.c_str());
    total += ms;
    state.SetIterationTime(ms / 1000.0);
  }
  state.counters["plugins"] = static_cast<double>(state.range(0));
  state.counters["ready_ms"] = total / static_cast<double>(state.iterations());
}
BENCHMARK(BM_StartupToReady)
    ->Arg(0)
    ->Arg(3)
    ->Arg(kPlugins)
    ->Iterations(10)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace novacron

BENCHMARK_MAIN();

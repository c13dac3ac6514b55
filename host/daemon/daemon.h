// novacrond's life: start-up, serve until SIGTERM/SIGINT, graceful stop.
#pragma once

#include <filesystem>
#include <optional>

#include "host/config/host_config.h"

namespace novacron {

struct DaemonOptions {
  HostConfig config;
  std::filesystem::path inspect_helper;  // empty: default_inspect_helper()
};

// Runs the daemon; returns the process exit code. The caller must have blocked SIGTERM,
// SIGINT and SIGHUP in every thread (block_shutdown_signals) before any thread exists.
int run_daemon(const DaemonOptions& options);

void block_shutdown_signals();

// <exe dir>/../lib/novacron/plugins: where the bundled plugins are, both in a build tree and
// in an install prefix.
std::filesystem::path default_bundled_plugin_dir();

}  // namespace novacron

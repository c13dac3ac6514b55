// novacrond: the NovaCron host daemon.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "host/config/host_config.h"
#include "host/daemon/daemon.h"

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask and sigwait() in the
  // main thread receives SIGTERM.
  novacron::block_shutdown_signals();

  CLI::App app{"novacrond: the NovaCron host daemon"};
  std::string config_file;
  std::string data_dir;
  app.add_option("--config", config_file, "Config file (JSON with comments)")->required();
  app.add_option("--data-dir", data_dir, "Data dir; overrides the config's data_dir");
  app.set_version_flag("--version", "novacrond " NOVACRON_VERSION " (SDK " NOVACRON_SDK_VERSION ")");
  CLI11_PARSE(app, argc, argv);

  auto config = novacron::load_host_config(config_file);
  if (!config) {
    std::cerr << "novacrond: invalid config: " << config.error().message << "\n"
              << "hint: `novacron config validate " << config_file << "` checks a config without starting\n";
    return 2;
  }
  if (!data_dir.empty()) config->data_dir = std::filesystem::absolute(data_dir).lexically_normal();
  return novacron::run_daemon({*config, {}});
}

// novacron: the NovaCron command-line tool. Commands that talk to a running host use its
// REST API (api_client.h says where the URL, token and CA come from); a few work without a
// daemon (plugin validate, plugin install/list/enable/disable with --data-dir, config
// validate, cert).
#include <CLI/CLI.hpp>

#include "host/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"novacron: manage NovaCron hosts, plugins and workloads"};
  app.require_subcommand(1);
  // Lets --json follow the subcommand: `novacron plugin validate X --json`.
  app.fallthrough();
  novacron::cli::Output out;
  int exit_code = 0;
  app.add_flag("--json", out.json, "Machine-readable JSON output")->configurable(false);
  app.set_version_flag("--version", "novacron " NOVACRON_VERSION " (SDK " NOVACRON_SDK_VERSION ")");
  novacron::cli::ConnectionFlags connection;
  novacron::cli::add_connection_flags(app, connection);
  novacron::cli::add_api_commands(app, out, exit_code, connection);
  novacron::cli::add_vm_commands(app, out, exit_code, connection);
  novacron::cli::add_transfer_commands(app, out, exit_code, connection);
  novacron::cli::add_schedule_commands(app, out, exit_code, connection);
  novacron::cli::add_plugin_commands(app, out, exit_code, connection);
  novacron::cli::add_config_commands(app, out, exit_code);
  novacron::cli::add_cert_commands(app, out, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

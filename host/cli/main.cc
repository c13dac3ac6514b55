// novacron: the NovaCron command-line tool. Commands that need no daemon (plugin validate,
// offline plugin install, config validate) live here; API commands arrive with the REST API.
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
  novacron::cli::add_plugin_commands(app, out, exit_code);
  novacron::cli::add_config_commands(app, out, exit_code);
  novacron::cli::add_cert_commands(app, out, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

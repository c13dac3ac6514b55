#pragma once

#include <CLI/CLI.hpp>

#include "host/cli/output.h"

namespace novacron::cli {

// Each adds its subcommands to `app`; the callbacks store their exit code in `exit_code`.
void add_plugin_commands(CLI::App& app, Output& out, int& exit_code);
void add_config_commands(CLI::App& app, Output& out, int& exit_code);
void add_cert_commands(CLI::App& app, Output& out, int& exit_code);

}  // namespace novacron::cli

#pragma once

#include <CLI/CLI.hpp>

#include "host/cli/api_client.h"
#include "host/cli/output.h"

namespace novacron::cli {

// Each adds its subcommands to `app`; the callbacks store their exit code in `exit_code`.
// Plugin commands work on a stopped host's data dir (--data-dir/--config) or, without
// those, through the API of a running host.
void add_plugin_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags);
// vm create|list|show|start|stop|reboot|suspend|resume|delete|console (vm_commands.cc).
void add_vm_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags);
// version, login, token, node, events, operation (api_commands.cc).
void add_api_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags);
// transfer send|list|show|cancel|limit|node-limit (transfer_commands.cc).
void add_transfer_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags);
// schedule simulate|show|list|config (schedule_commands.cc).
void add_schedule_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags);
// A placement decision (GET /v1/placements/{id}) for people.
void print_placement(const nlohmann::json& placement);
void add_config_commands(CLI::App& app, Output& out, int& exit_code);
void add_cert_commands(CLI::App& app, Output& out, int& exit_code);

// Every item of a paginated list route (follows next_cursor).
tl::expected<nlohmann::json, ApiFailure> fetch_all(ApiClient& api, const std::string& path);
// Waits for an operation with a progress bar and prints its outcome; 0 when it succeeded.
int wait_for_operation(ApiClient& api, const Output& out, nlohmann::json op, double timeout_s);

}  // namespace novacron::cli

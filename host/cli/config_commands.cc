#include <filesystem>

#include "host/cli/commands.h"
#include "host/config/host_config.h"

namespace novacron::cli {

void add_config_commands(CLI::App& app, Output& out, int& exit_code) {
  auto* config = app.add_subcommand("config", "Work with host config files");
  config->require_subcommand(1);
  auto* validate = config->add_subcommand("validate", "Check a host config file without starting a host");
  auto file = std::make_shared<std::string>();
  validate->add_option("FILE", *file, "Config file")->required();
  validate->callback([&out, &exit_code, file] {
    auto cfg = load_host_config(*file);
    if (!cfg) {
      if (out.json) {
        nlohmann::json errors = nlohmann::json::array();
        std::string msg = cfg.error().message;
        std::string prefix = *file + ": ";
        if (msg.starts_with(prefix)) msg = msg.substr(prefix.size());
        for (size_t start = 0; start <= msg.size();) {
          size_t end = msg.find('\n', start);
          if (end == std::string::npos) end = msg.size();
          if (end > start) errors.push_back(msg.substr(start, end - start));
          start = end + 1;
        }
        exit_code = out.emit_json({{"valid", false}, {"file", *file}, {"errors", errors}}, 1);
        return;
      }
      std::cerr << "invalid: " << cfg.error().message << "\n";
      exit_code = 1;
      return;
    }
    if (out.json) {
      nlohmann::json plugins = nlohmann::json::array();
      for (const auto& p : cfg->plugins) {
        plugins.push_back({{"id", p.id}, {"version", p.version.value_or("")}, {"required", p.required}});
      }
      exit_code = out.emit_json({{"valid", true},
                                 {"file", *file},
                                 {"node", cfg->node_name},
                                 {"data_dir", cfg->data_dir.string()},
                                 {"listen", cfg->listen_address + ":" + std::to_string(cfg->listen_port)},
                                 {"plugins", plugins}});
      return;
    }
    std::cout << *file << ": valid (node " << cfg->node_name << ", data dir " << cfg->data_dir.string() << ", listen "
              << cfg->listen_address << ":" << cfg->listen_port << ", " << cfg->plugins.size() << " plugins)\n";
    exit_code = 0;
  });
}

}  // namespace novacron::cli

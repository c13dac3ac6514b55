#include <memory>

#include "host/cli/commands.h"
#include "host/identity/certificates.h"

namespace novacron::cli {
namespace fs = std::filesystem;

void add_cert_commands(CLI::App& app, Output& out, int& exit_code) {
  auto* cert = app.add_subcommand("cert", "Cluster CA and node certificates for mutual TLS between hosts");
  cert->require_subcommand(1);

  {
    auto* cmd = cert->add_subcommand("init", "Create the cluster CA (ca.crt, ca.key with mode 0600)");
    auto dir = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>("NovaCron cluster CA");
    auto days = std::make_shared<int>(3650);
    cmd->add_option("--dir", *dir, "Folder for ca.crt and ca.key; keep it off the nodes")->required();
    cmd->add_option("--name", *name, "Common name of the CA");
    cmd->add_option("--days", *days, "Validity in days (default 3650)");
    cmd->callback([&out, &exit_code, dir, name, days] {
      auto ca = create_cluster_ca(*dir, *name, *days);
      if (!ca) {
        exit_code = out.error(ca.error().code, ca.error().message);
        return;
      }
      if (out.json) {
        exit_code = out.emit_json({{"ca_cert", ca->cert.string()}, {"ca_key", ca->key.string()}});
        return;
      }
      std::cout << "created cluster CA\n  certificate " << ca->cert.string() << "\n  key         " << ca->key.string()
                << " (mode 0600: keep it secret and off the nodes)\n";
      exit_code = 0;
    });
  }

  {
    auto* cmd = cert->add_subcommand("issue", "Issue a node certificate signed by the cluster CA");
    auto node = std::make_shared<std::string>();
    auto ca_dir = std::make_shared<std::string>();
    auto out_dir = std::make_shared<std::string>(".");
    auto ips = std::make_shared<std::vector<std::string>>();
    auto days = std::make_shared<int>(825);
    cmd->add_option("NODE", *node, "Node name, as in the node's config (node.name)")->required();
    cmd->add_option("--ca-dir", *ca_dir, "Folder with ca.crt and ca.key")->required();
    cmd->add_option("--out", *out_dir, "Folder for NODE.crt and NODE.key (default: current folder)");
    cmd->add_option("--ip", *ips, "IP address to add as a subjectAltName (repeatable)");
    cmd->add_option("--days", *days, "Validity in days (default 825)");
    cmd->callback([&out, &exit_code, node, ca_dir, out_dir, ips, days] {
      auto files = issue_node_certificate(*ca_dir, *node, *out_dir, *ips, *days);
      if (!files) {
        exit_code = out.error(files.error().code, files.error().message,
                              files.error().code == "io" ? "run `novacron cert init --dir DIR` first" : "");
        return;
      }
      if (out.json) {
        exit_code = out.emit_json({{"node", *node}, {"cert", files->cert.string()}, {"key", files->key.string()}});
        return;
      }
      std::cout << "issued a certificate for node " << *node << "\n  certificate " << files->cert.string()
                << "\n  key         " << files->key.string() << " (mode 0600)\n";
      exit_code = 0;
    });
  }

  {
    auto* cmd = cert->add_subcommand("verify", "Check that a certificate is from the cluster CA and names a node");
    auto file = std::make_shared<std::string>();
    auto ca = std::make_shared<std::string>();
    auto node = std::make_shared<std::string>();
    cmd->add_option("CERT", *file, "Certificate (PEM)")->required();
    cmd->add_option("--ca", *ca, "The cluster CA certificate (ca.crt)")->required();
    cmd->add_option("--node", *node, "Node name the certificate must name")->required();
    cmd->callback([&out, &exit_code, file, ca, node] {
      auto r = verify_node_certificate(*ca, *file, *node);
      if (!r) {
        exit_code = out.error(r.error().code, r.error().message);
        return;
      }
      if (out.json) {
        exit_code = out.emit_json({{"valid", true}, {"node", *node}});
        return;
      }
      std::cout << *file << ": issued by the cluster CA for node " << *node << "\n";
      exit_code = 0;
    });
  }
}

}  // namespace novacron::cli

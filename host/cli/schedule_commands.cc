// novacron schedule simulate|show|list|config: the scheduler's decisions and how it is set
// up (docs/scheduler.md). `vm create --explain` prints a decision the same way.
#include <fstream>
#include <iomanip>
#include <sstream>

#include "host/cli/commands.h"

namespace novacron::cli {
using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string fixed(double v, int digits = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// Short policy name for tables: "io.novacron.policy.binpack" -> "binpack".
std::string short_name(const std::string& id) {
  const auto dot = id.rfind('.');
  return dot == std::string::npos ? id : id.substr(dot + 1);
}

}  // namespace

void print_placement(const json& p) {
  std::cout << str(p, "id") << " -> " << str(p, "node") << ": " << str(p, "summary") << "\n";
  std::cout << "Nodes       " << str(p, "nodes_total") << " total, " << str(p, "nodes_feasible") << " feasible, "
            << str(p, "nodes_scored") << " scored\n";
  if (p.contains("filters") && !p["filters"].empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : p["filters"]) {
      for (const auto& r : f["reasons"]) {
        std::string example;
        if (!r["examples"].empty())
          example = r["examples"][0].value("node", "") + ": " + r["examples"][0].value("text", "");
        rows.push_back({short_name(f.value("policy", "")), str(r, "code"), str(r, "nodes"), example});
      }
    }
    if (!rows.empty()) {
      std::cout << "\nRejected\n";
      print_table({"POLICY", "REASON", "NODES", "EXAMPLE"}, rows);
    }
  }
  if (p.contains("top") && !p["top"].empty()) {
    std::vector<std::string> header = {"RANK", "NODE", "TOTAL"};
    for (const auto& s : p["top"][0]["scores"]) header.push_back(short_name(s.value("policy", "")));
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : p["top"]) {
      std::vector<std::string> row = {str(c, "rank"), str(c, "node"), fixed(c.value("total", 0.0))};
      for (const auto& s : c["scores"]) {
        row.push_back(fixed(s.value("normalised", 0.0)) + " x" + fixed(s.value("weight", 1.0), 1));
      }
      rows.push_back(row);
    }
    std::cout << "\nCandidates (normalised score x weight)\n";
    print_table(header, rows);
  }
  if (p.contains("node_reasons")) {
    std::cout << "\nWhy each node was rejected\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : p["node_reasons"])
      rows.push_back({str(n, "node"), short_name(str(n, "policy")), str(n, "text")});
    print_table({"NODE", "POLICY", "REASON"}, rows);
  }
  if (p.contains("attempts")) {
    std::cout << "\nClaims\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : p["attempts"]) {
      rows.push_back({str(a, "node"), a["code"].is_null() ? "claimed" : str(a, "code"), str(a, "message")});
    }
    print_table({"NODE", "RESULT", "MESSAGE"}, rows);
  }
  if (p.contains("notes")) {
    for (const auto& n : p["notes"]) std::cout << "note: " << n.get<std::string>() << "\n";
  }
}

void print_detail(const json& detail) {
  std::cout << "\nEvery node\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : detail) {
    std::string verdicts;
    for (const auto& v : n["filters"]) {
      if (!v.value("pass", true))
        verdicts += (verdicts.empty() ? "" : "; ") + short_name(str(v, "policy")) + ": " + str(v, "text");
    }
    rows.push_back({str(n, "node"), n["rank"].is_null() ? "-" : str(n, "rank"),
                    n["total"].is_null() ? "-" : fixed(n.value("total", 0.0)),
                    verdicts.empty() ? (n.value("ready", true) ? "passes every filter" : "not ready") : verdicts});
  }
  print_table({"NODE", "RANK", "TOTAL", "VERDICT"}, rows);
}

void add_schedule_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* schedule = app.add_subcommand("schedule", "The scheduler: dry runs, stored decisions, its set-up");
  schedule->require_subcommand(1);

  auto* simulate = schedule->add_subcommand("simulate", "Where a VM spec would go and why; nothing is created");
  auto file = std::make_shared<std::string>();
  auto full = std::make_shared<bool>(false);
  simulate->add_option("-f,--file", *file, "VM spec (JSON), as for novacron vm create -f")->required();
  simulate->add_flag("--full", *full, "Every node's verdicts and scores, not just the top candidates");
  simulate->callback([&out, &exit_code, &flags, file, full] {
    std::ifstream in(*file);
    if (!in) {
      exit_code = out.error("usage", *file + ": cannot read the spec file", "novacron schedule simulate -f spec.json");
      return;
    }
    json spec = json::parse(in, nullptr, false);
    if (spec.is_discarded() || !spec.is_object()) {
      exit_code = out.error("usage", *file + ": not a JSON object", "the file holds one VM spec");
      return;
    }
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = api.call("POST", std::string("/v1/placements:simulate") + (*full ? "?explain=full" : ""), spec.dump());
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      json p = (*r)["placement"];
      p["id"] = "simulation";
      print_placement(p);
      if (r->contains("detail")) print_detail((*r)["detail"]);
      return p.value("outcome", "") == "placed" ? 0 : 2;
    });
  });

  auto* show = schedule->add_subcommand("show", "A stored placement decision");
  auto id = std::make_shared<std::string>();
  show->add_option("ID", *id, "Placement id (pl-...), as vm create --explain and schedule list print")->required();
  show->callback([&out, &exit_code, &flags, id] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = api.call("GET", "/v1/placements/" + url_encode(*id));
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      print_placement(*r);
      return 0;
    });
  });

  auto* list = schedule->add_subcommand("list", "Placement decisions of this node, newest first");
  auto vm = std::make_shared<std::string>();
  list->add_option("--vm", *vm, "Only decisions for this VM (name or id)");
  list->callback([&out, &exit_code, &flags, vm] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto all = fetch_all(api, "/v1/placements" + (vm->empty() ? "" : "?vm=" + url_encode(*vm)));
      if (!all) return ApiClient::fail(out, all.error());
      if (out.json) return out.emit_json({{"items", *all}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& p : *all) {
        rows.push_back({str(p, "id"), p["vm"].value("name", ""), str(p, "outcome"), str(p, "node"),
                        str(p, "nodes_feasible") + "/" + str(p, "nodes_total"), str(p, "attempts_count")});
      }
      print_table({"ID", "VM", "OUTCOME", "NODE", "FEASIBLE", "CLAIMS"}, rows);
      return 0;
    });
  });

  auto* rebalance =
      schedule->add_subcommand("rebalance", "Migrations that would raise the cluster's placement score (a proposal)");
  auto dry_run = std::make_shared<bool>(false);
  auto max = std::make_shared<int>(10);
  auto local = std::make_shared<bool>(false);
  rebalance->add_flag("--dry-run", *dry_run, "Required: propose only (executing comes with the migration work)");
  rebalance->add_option("--max", *max, "At most this many moves (default 10)")->check(CLI::Range(1, 1000));
  rebalance->add_flag("--local", *local, "Only this node's VMs (default: every node's)");
  rebalance->callback([&out, &exit_code, &flags, dry_run, max, local] {
    if (!*dry_run) {
      exit_code = out.error("usage", "only proposals can be made: migrations are not executed yet",
                            "novacron schedule rebalance --dry-run");
      return;
    }
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = api.call("POST", "/v1/placements:rebalance?dry_run=true&max=" + std::to_string(*max) +
                                    "&scope=" + (*local ? "local" : "cluster"));
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      std::cout << str(*r, "summary") << "\n";
      if (!(*r)["moves"].empty()) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& m : (*r)["moves"]) {
          rows.push_back({str(m, "vm"), str(m, "from"), str(m, "to"),
                          m.value("fixes", false) ? "fixes a rule" : fixed(m.value("gain", 0.0), 3),
                          fixed(m.value("estimated_seconds", 0.0), 1) + " s",
                          fixed(m.value("estimated_downtime_ms", 0.0), 0) + " ms"});
        }
        print_table({"VM", "FROM", "TO", "GAIN", "TIME", "DOWNTIME"}, rows);
      }
      if (r->contains("notes")) {
        for (const auto& n : (*r)["notes"]) std::cout << "note: " << n.get<std::string>() << "\n";
      }
      return 0;
    });
  });

  auto* config = schedule->add_subcommand("config", "The effective scheduler: filters, scorers and weights");
  config->callback([&out, &exit_code, &flags] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = api.call("GET", "/v1/scheduler");
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      std::vector<std::vector<std::string>> rows;
      for (const auto& f : (*r)["filters"]) rows.push_back({"filter", f.get<std::string>(), "-", "-"});
      for (const auto& s : (*r)["scorers"]) {
        rows.push_back({"scorer", str(s, "id"), fixed(s.value("weight", 1.0), 2), str(s, "scale")});
      }
      print_table({"ROLE", "POLICY", "WEIGHT", "SCALE"}, rows);
      if (!(*r)["error"].is_null()) std::cout << "error: " << (*r)["error"].get<std::string>() << "\n";
      return 0;
    });
  });
}

}  // namespace novacron::cli

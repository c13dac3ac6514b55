#include "host/placement/placement_service.h"

#include <chrono>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "host/cluster/peer_monitor.h"
#include "host/operations/operation_manager.h"
#include "host/placement/decision_json.h"
#include "host/placement/placement_request.h"
#include "host/plugins/plugin_manager.h"
#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "host/scheduler/rebalancer.h"
#include "host/services/event_bus.h"
#include "migration_model.h"

namespace novacron {
using nlohmann::json;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_placement_id(const std::string& node) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rng()));
  return "pl-" + std::to_string(now_ms()) + "-" + node + "-" + suffix;
}

// A request pinned to one node (placement.node): every other node is rejected with a reason.
class PinnedNodeFilter final : public scheduler::PlacementPolicy {
 public:
  explicit PinnedNodeFilter(std::string node) : node_(std::move(node)) {}
  std::string_view name() const override { return "pinned-node"; }
  std::uint32_t roles() const override { return kFilter; }
  std::string filter(const scheduler::PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    for (size_t i = 0; i < rows.size(); ++i) reject[i] = ctx.table.name(rows[i]) == node_ ? 0 : 1;
    return {};
  }
  std::string reason(std::uint8_t) const override { return "the request is pinned to " + node_; }
  std::string reason_code(std::uint8_t) const override { return "pinned"; }

 private:
  std::string node_;
};

// The policies of one placement, borrowed from the plugin manager for its duration.
struct PolicySet {
  std::vector<BorrowedPlugin<sdk::SchedulingPolicy>> borrowed;
  std::vector<std::unique_ptr<scheduler::PlacementPolicy>> owned;
  std::vector<scheduler::WeightedPolicy> filters, scorers;
  std::vector<std::string> notes;
  std::string error;  // a listed filter that is not running: the placement cannot be decided

  const scheduler::PlacementPolicy* adapt(PluginManager& plugins, const std::string& id) {
    const auto status = plugins.status(id);
    auto plugin = plugins.scheduling_policy(id);
    if (!plugin || !status) return nullptr;
    owned.push_back(std::make_unique<scheduler::PluginPolicy>(id, plugin.get(), status->interface_version));
    borrowed.push_back(std::move(plugin));
    return owned.back().get();
  }
};

PolicySet borrow_policies(PluginManager& plugins, const SchedulerConfig& cfg, bool filters_only) {
  PolicySet set;
  if (!cfg.configured) {
    // Without a scheduler section: every running policy, in plugins.load order, by its roles.
    for (const auto& p : plugins.list()) {
      if (p.kind != "scheduling_policy" || p.state != "running") continue;
      const auto* policy = set.adapt(plugins, p.id);
      if (policy == nullptr) continue;
      if ((policy->roles() & scheduler::PlacementPolicy::kFilter) != 0) set.filters.push_back({policy, 1.0});
      if (!filters_only && (policy->roles() & scheduler::PlacementPolicy::kScorer) != 0) {
        set.scorers.push_back({policy, 1.0});
      }
    }
    return set;
  }
  for (const auto& id : cfg.filters) {
    const auto* policy = set.adapt(plugins, id);
    if (policy == nullptr) {
      set.error = "filter " + id + " is not running (see novacron plugin list); placements stop rather than skip it";
      return set;
    }
    if ((policy->roles() & scheduler::PlacementPolicy::kFilter) == 0) {
      set.error = id + " does not filter (its roles: scores); list it under /scheduler/scorers";
      return set;
    }
    set.filters.push_back({policy, 1.0});
  }
  if (filters_only) return set;
  for (const auto& ref : cfg.scorers) {
    const auto* policy = set.adapt(plugins, ref.id);
    if (policy == nullptr || (policy->roles() & scheduler::PlacementPolicy::kScorer) == 0) {
      const std::string why = policy == nullptr ? " is not running" : " does not score";
      if (ref.optional) {
        set.notes.push_back("scorer " + ref.id + why + "; skipped (optional)");
        continue;
      }
      set.error = "scorer " + ref.id + why;
      return set;
    }
    set.scorers.push_back({policy, ref.weight});
  }
  return set;
}

int status_of(scheduler::Outcome o) {
  switch (o) {
    case scheduler::Outcome::kPlaced:
      return 200;
    case scheduler::Outcome::kNoFeasibleNode:
      return 409;
    case scheduler::Outcome::kInvalid:
      return 400;
    case scheduler::Outcome::kUnavailable:
      return 503;
  }
  return 500;
}

PlacementAnswer fail(int status, const std::string& code, const std::string& message, json body = json::object()) {
  return {status, code, message, std::move(body)};
}

}  // namespace

struct PlacementService::Decided {
  PlacementAnswer failure;  // error_code set when no decision could be made
  PlacementSpec spec;
  scheduler::Decision decision;
  json record;
  json detail;
};

PlacementService::PlacementService(const HostConfig& config, VmStore& vms, VmService& service, PluginManager& plugins,
                                   OperationManager& operations, PeerMonitor* peers, Database& db, EventBus& events)
    : config_(config),
      service_(service),
      plugins_(plugins),
      operations_(operations),
      peers_(peers),
      events_(events),
      usage_(db, UsageCollector::Options{}),
      registry_(config, vms, service, peers, &usage_),
      store_(db),
      vms_(vms) {}

PlacementService::Decided PlacementService::decide(const json& spec, bool local_only, const std::string& explain) {
  Decided out;
  auto parsed = parse_placement_spec(spec);
  if (!parsed) {
    out.failure = fail(400, parsed.error().code, parsed.error().message);
    return out;
  }
  out.spec = std::move(*parsed);
  scheduler::PlacementQuery& q = out.spec.query;
  std::vector<NodeSummary> nodes;
  if (local_only) {
    nodes.push_back(registry_.local());
  } else {
    nodes = registry_.collect();
  }
  std::vector<scheduler::NodeView> views;
  views.reserve(nodes.size());
  for (const auto& n : nodes) views.push_back(n.view);
  std::string error;
  auto table = scheduler::NodeTable::build(views, error);
  if (!table) {
    out.failure = fail(503, "scheduler_unavailable", "the node list is unusable: " + error);
    return out;
  }
  // Where the request's groups have members now.
  for (const auto& g : q.groups) {
    scheduler::GroupMembers m;
    for (std::uint32_t row = 0; row < nodes.size(); ++row) {
      const auto it = nodes[row].groups.find(g.name);
      if (it == nodes[row].groups.end() || it->second == 0) continue;
      m.rows.push_back(row);
      m.counts.push_back(it->second);
      m.members += it->second;
    }
    q.members.push_back(std::move(m));
  }
  PolicySet policies = borrow_policies(plugins_, config_.scheduler, local_only);
  if (!policies.error.empty()) {
    out.failure = fail(503, "scheduler_unavailable", policies.error);
    return out;
  }
  // Groups and constraints are rules: without the policy that enforces them the request is
  // refused rather than placed as if they were not there.
  const auto has_filter = [&](const char* id) {
    return std::any_of(policies.filters.begin(), policies.filters.end(),
                       [&](const scheduler::WeightedPolicy& w) { return w.policy->name() == id; });
  };
  if (!q.constraints.empty() && !has_filter("io.novacron.policy.constraints")) {
    out.failure = fail(400, "invalid_spec",
                       "/placement/constraints: no constraints policy runs here (load io.novacron.policy.constraints "
                       "and list it in /scheduler/filters)");
    return out;
  }
  const bool hard_group = std::any_of(q.groups.begin(), q.groups.end(), [](const auto& g) { return g.hard; });
  if (hard_group && !has_filter("io.novacron.policy.affinity")) {
    out.failure = fail(400, "invalid_spec",
                       "/placement/groups: no affinity policy runs here (load io.novacron.policy.affinity and list "
                       "it in /scheduler/filters)");
    return out;
  }
  PinnedNodeFilter pinned(out.spec.pinned_node);
  if (!out.spec.pinned_node.empty()) {
    if (!table->row_of(out.spec.pinned_node)) {
      out.failure =
          fail(400, "invalid_spec", "/placement/node: \"" + out.spec.pinned_node + "\" is not a node of this cluster");
      return out;
    }
    policies.filters.insert(policies.filters.begin(), {&pinned, 1.0});
  }
  scheduler::EngineOptions options;
  options.max_scored = config_.scheduler.max_scored;
  options.top_k = std::max<size_t>(config_.scheduler.top_k, static_cast<size_t>(config_.scheduler.claim_max_attempts));
  const scheduler::Engine engine(policies.filters, policies.scorers, options);
  out.decision = engine.place(q, *table, false);
  for (auto& n : policies.notes) out.decision.notes.push_back(std::move(n));
  for (std::uint32_t row = 0; row < nodes.size(); ++row) {
    if (!nodes[row].error.empty()) out.decision.notes.push_back(nodes[row].view.name + ": " + nodes[row].error);
  }
  out.record = decision_to_json(out.decision);
  if (explain == "full") {
    out.detail = detail_to_json(engine.detail(q, *table, config_.scheduler.max_detail_nodes), out.decision.scorers);
  }
  return out;
}

PlacementAnswer PlacementService::simulate(const json& spec, const std::string& explain) {
  Decided d = decide(spec, false, explain);
  if (!d.failure.error_code.empty()) return d.failure;
  json body = {{"placement", d.record}};
  if (!d.detail.is_null()) body["detail"] = d.detail;
  return {200, "", "", body};
}

void PlacementService::record(const std::string& id, const std::string& vm_name, const std::string& vm_id,
                              const std::string& outcome, const std::string& node, int attempts, const json& rec,
                              const std::string& principal) {
  PlacementRecord r{id, vm_name, vm_id, outcome, node, attempts, rec, principal, now_ms()};
  if (auto s = store_.insert(r); !s) spdlog::warn("placement {}: not stored: {}", id, s.error().message);
  (void)store_.prune(config_.scheduler.decisions_max_rows,
                     std::int64_t{config_.scheduler.decisions_retention_days} * 86400000, now_ms());
  events_.publish(outcome == "placed" ? "placement.decided" : "placement.failed", "placement/" + id, "host",
                  json{{"id", id}, {"vm", vm_name}, {"node", node}, {"outcome", outcome}}.dump());
}

PlacementAnswer PlacementService::create(const json& spec, const std::string& principal, long wait_seconds,
                                         const std::string& explain) {
  std::lock_guard<std::mutex> lock(decide_mutex_);
  Decided d = decide(spec, false, explain);
  if (!d.failure.error_code.empty()) return d.failure;
  const std::string id = new_placement_id(config_.node_name);
  const std::string vm_name = d.spec.query.name;
  json rec = d.record;
  rec["id"] = id;
  if (!d.decision.placed) {
    const std::string code = scheduler::outcome_name(d.decision.outcome);
    record(id, vm_name, "", code, "", 0, rec, principal);
    json body = {{"placement", rec}};
    if (!d.detail.is_null()) body["detail"] = d.detail;
    return fail(status_of(d.decision.outcome),
                d.decision.outcome == scheduler::Outcome::kInvalid ? "invalid_spec" : code,
                d.decision.outcome == scheduler::Outcome::kInvalid ? d.decision.error : d.decision.summary, body);
  }
  // Claim the candidates in order until one takes the VM.
  json attempts = json::array();
  const size_t max_attempts =
      std::min(d.decision.top.size(), static_cast<size_t>(config_.scheduler.claim_max_attempts));
  for (size_t i = 0; i < max_attempts; ++i) {
    const std::string& node = d.decision.top[i].node;
    PlacementAnswer a = node == config_.node_name ? claim_local(spec, principal, id)
                                                  : claim_remote(node, spec, principal, id, wait_seconds);
    attempts.push_back({{"node", node},
                        {"status", a.status},
                        {"code", a.error_code.empty() ? json(nullptr) : json(a.error_code)},
                        {"message", a.message}});
    if (a.error_code.empty()) {
      rec["attempts"] = attempts;
      if (i > 0) {
        // The engine's first choice refused: say where the VM went and why.
        rec["decided_node"] = rec["node"];
        rec["node"] = node;
        rec["summary"] = "placed on " + node + " (candidate " + std::to_string(i + 1) + "; " +
                         attempts[0]["node"].get<std::string>() +
                         " refused: " + attempts[0]["message"].get<std::string>() + ")";
      }
      const std::string vm_id = a.body.contains("vm") ? a.body["vm"].value("id", std::string()) : std::string();
      record(id, vm_name, vm_id, "placed", node, static_cast<int>(i + 1), rec, principal);
      json summary = {{"id", id}, {"node", node}, {"summary", rec["summary"]}, {"attempts", attempts}};
      a.body["placement"] = explain.empty() ? summary : rec;
      if (!d.detail.is_null()) a.body["detail"] = d.detail;
      return a;
    }
    // The node filled up since the decision, or it is unreachable or unavailable: the next
    // candidate. Anything else (a name taken, a spec the target refuses) ends the placement.
    const bool retry = a.error_code == "capacity_conflict" || a.status == 503 || a.status == 0;
    if (!retry) {
      rec["attempts"] = attempts;
      record(id, vm_name, "", "claim_failed", "", static_cast<int>(i + 1), rec, principal);
      a.body["placement"] = rec;
      return a;
    }
    spdlog::info("placement {}: {} refused {} ({}: {}); trying the next candidate", id, node, vm_name, a.error_code,
                 a.message);
  }
  rec["attempts"] = attempts;
  rec["outcome"] = "no_feasible_node";
  record(id, vm_name, "", "no_feasible_node", "", static_cast<int>(attempts.size()), rec, principal);
  std::string why;
  for (const auto& a : attempts) why += "; " + a["node"].get<std::string>() + ": " + a["message"].get<std::string>();
  return fail(409, "no_feasible_node",
              "every candidate refused " + vm_name + " (" + std::to_string(attempts.size()) + " tried)" + why,
              {{"placement", rec}});
}

PlacementAnswer PlacementService::claim(const json& body, const std::string& principal) {
  if (!body.is_object() || !body.contains("spec") || !body["spec"].is_object()) {
    return fail(400, "invalid_spec", "/spec: expected the VM spec (an object)");
  }
  const std::string placement_id = body.value("placement_id", std::string());
  return claim_local(body["spec"], principal, placement_id);
}

PlacementAnswer PlacementService::claim_local(const json& spec, const std::string& principal,
                                              const std::string& placement_id) {
  // Check and record under one lock: two claims cannot both take the last room.
  std::lock_guard<std::mutex> lock(claim_mutex_);
  Decided d = decide(spec, true, "");
  if (!d.failure.error_code.empty()) return d.failure;
  if (!d.decision.placed) {
    std::string why = d.decision.summary;
    if (!d.decision.node_reasons.empty() && !d.decision.node_reasons[0].text.empty()) {
      why = d.decision.node_reasons[0].policy + ": " + d.decision.node_reasons[0].text;
    }
    if (d.decision.outcome == scheduler::Outcome::kInvalid) return fail(400, "invalid_spec", d.decision.error);
    if (d.decision.outcome == scheduler::Outcome::kUnavailable) {
      return fail(503, "scheduler_unavailable", d.decision.error);
    }
    return fail(409, "capacity_conflict", config_.node_name + " cannot take " + d.spec.query.name + ": " + why,
                {{"node", registry_.local_summary()}});
  }
  auto created = service_.create(spec, principal);
  if (!created) {
    const std::string& code = created.error().code;
    const int status = code == "invalid_spec"                         ? 400
                       : (code == "name_taken" || code == "conflict") ? 409
                       : code == "not_found"                          ? 404
                                                                      : 503;
    return fail(status, code, created.error().message);
  }
  if (!placement_id.empty()) (void)vms_.set_placement(created->first.id, placement_id);
  created->first.placement_id = placement_id;
  return {202, "", "", {{"vm", VmService::to_json(created->first)}, {"operation", created->second.to_json()}}};
}

PlacementAnswer PlacementService::claim_remote(const std::string& node, const json& spec, const std::string& principal,
                                               const std::string& placement_id, long wait_seconds) {
  if (peers_ == nullptr) return fail(0, "unreachable", "no cluster connection");
  json body = {
      {"spec", spec}, {"placement_id", placement_id}, {"decided_by", config_.node_name}, {"requested_by", principal}};
  auto res = peers_->call(node, "POST", "/v1/vms:claim", body.dump(),
                          std::chrono::milliseconds(config_.scheduler.claim_timeout_ms));
  if (!res) return fail(0, res.error().code, res.error().message);
  json answer = json::parse(res->body, nullptr, false);
  if (res->status != 202 && res->status != 201) {
    std::string code = "claim_failed", message = "answered " + std::to_string(res->status);
    if (answer.is_object() && answer.contains("error") && answer["error"].is_object()) {
      code = answer["error"].value("code", code);
      message = answer["error"].value("message", message);
    }
    return fail(res->status, code, message);
  }
  if (!answer.is_object() || !answer.contains("vm") || !answer.contains("operation")) {
    return fail(502, "claim_failed", node + " answered the claim without a VM");
  }
  // The VM is created on the peer; a local vm.place operation follows the peer's vm.create,
  // so that clients wait here as for a local VM.
  const std::string remote_op = answer["operation"].value("id", std::string());
  const std::string vm_id = answer["vm"].value("id", std::string());
  PeerMonitor* peers = peers_;
  auto op = operations_.start(
      "vm.place", "vm/" + vm_id, principal, [peers, node, remote_op](OperationContext& ctx) -> Expected<json> {
        int failures = 0;
        while (true) {
          auto r = peers->call(node, "GET", "/v1/operations/" + remote_op);
          if (r && r->status == 200) {
            failures = 0;
            json o = json::parse(r->body, nullptr, false);
            const std::string state = o.is_object() ? o.value("state", std::string()) : std::string();
            if (state == "succeeded") return o.value("result", json::object());
            if (!state.empty() && state != "running") {
              return make_error(o.value("error_code", std::string("failed")),
                                "on " + node + ": " + o.value("error_message", std::string(state)));
            }
            if (o.is_object())
              ctx.report_progress(o.value("progress", 0.0), "on " + node + ": " + o.value("message", ""));
          } else if (++failures >= 20) {
            return make_error("unavailable", node + " stopped answering about operation " + remote_op +
                                                 "; the VM's state is on " + node);
          }
          if (ctx.cancel_requested()) {
            return make_error("cancelled", "stopped following " + node + "'s operation " + remote_op);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      });
  if (!op) return fail(503, op.error().code, op.error().message);
  json out = {{"vm", answer["vm"]}, {"operation", op->to_json()}, {"remote_operation", answer["operation"]}};
  if (wait_seconds > 0) {
    // Wait here as a local create would (the route answers 201 once done).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      auto now = operations_.get(op->id);
      if (now && now->finished()) {
        out["operation"] = now->to_json();
        if (now->state != "succeeded") return fail(409, now->error_code, "create failed: " + now->error_message);
        if (now->result.contains("vm")) out["vm"] = now->result["vm"];
        return {201, "", "", out};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return {202, "", "", out};
}

bool PlacementService::enabled() const {
  return config_.scheduler.configured || (config_.cluster && !config_.cluster->peers.empty());
}

json PlacementService::describe() {
  json filters = json::array(), scorers = json::array();
  PolicySet set = borrow_policies(plugins_, config_.scheduler, false);
  for (const auto& f : set.filters) filters.push_back(std::string(f.policy->name()));
  for (const auto& s : set.scorers) {
    scorers.push_back({{"id", std::string(s.policy->name())},
                       {"weight", s.weight},
                       {"scale", s.policy->scale() == scheduler::ScoreScale::kUnit ? "unit" : "relative"}});
  }
  return {{"configured", config_.scheduler.configured},
          {"filters", filters},
          {"scorers", scorers},
          {"error", set.error.empty() ? json(nullptr) : json(set.error)},
          {"notes", set.notes},
          {"max_scored", config_.scheduler.max_scored},
          {"top_k", config_.scheduler.top_k},
          {"claim_max_attempts", config_.scheduler.claim_max_attempts}};
}

}  // namespace novacron

namespace novacron {

PlacementService::~PlacementService() {
  stop_periodic_rebalance();
  usage_.flush();  // the five-minute bucket in progress survives a restart
}

PlacementAnswer PlacementService::rebalance(const std::string& scope, size_t max) {
  if (scope != "local" && scope != "cluster") {
    return fail(400, "invalid_parameter", "scope: expected local or cluster, got \"" + scope + "\"");
  }
  std::vector<NodeSummary> nodes = registry_.collect();
  std::vector<scheduler::NodeView> views;
  for (const auto& n : nodes) views.push_back(n.view);
  std::string error;
  auto table = scheduler::NodeTable::build(views, error);
  if (!table) return fail(503, "scheduler_unavailable", "the node list is unusable: " + error);
  PolicySet policies = borrow_policies(plugins_, config_.scheduler, false);
  if (!policies.error.empty()) return fail(503, "scheduler_unavailable", policies.error);
  const scheduler::Engine engine(policies.filters, policies.scorers, scheduler::EngineOptions{3, 0});
  // This node's VMs, each as if it were being placed now (row 0 is this node).
  std::vector<scheduler::RebalanceVm> vms;
  vms.reserve(64);
  std::string after;
  while (true) {
    auto page = vms_.list(VmFilter{}, after, 1000);
    if (!page) return fail(503, "state_store", page.error().message);
    for (const auto& vm : *page) {
      if (vm.state == "missing" || vm.state == "deleting") continue;
      auto spec = parse_placement_spec(vm.spec);
      if (!spec) continue;
      scheduler::RebalanceVm r;
      r.name = vm.name;
      r.id = vm.id;
      r.row = 0;
      r.query = std::move(spec->query);
      if (r.query.workload_class == sdk::WorkloadClass::kUnknown) {
        r.query.workload_class = usage_.classify(vm.id).workload;  // the spec's class wins
      }
      for (const auto& g : r.query.groups) {
        scheduler::GroupMembers m;
        for (std::uint32_t row = 0; row < nodes.size(); ++row) {
          const auto it = nodes[row].groups.find(g.name);
          if (it == nodes[row].groups.end() || it->second == 0) continue;
          m.rows.push_back(row);
          m.counts.push_back(it->second);
          m.members += it->second;
        }
        r.query.members.push_back(std::move(m));
      }
      vms.push_back(std::move(r));
    }
    if (page->size() < 1000) break;
    after = page->back().name;
  }
  // Cost: the pre-copy model over a same-datacenter link (10 Gbit/s nominal) with the
  // default dirty rate of the VM's class; disks the VM created are copied too.
  const policy::migration_cost::Calibration calibration;
  const auto cost = [&](const scheduler::RebalanceVm& vm, std::uint32_t, std::uint32_t) {
    policy::migration_cost::MigrationInput in;
    in.memory_mib = static_cast<double>(vm.query.resources[scheduler::kMemory]);
    in.dirty_mib_per_second = calibration.dirty_rate(vm.query.workload_class);
    in.link_mbit_per_second = 10000;
    in.disk_gib = static_cast<double>(vm.query.resources[scheduler::kDisk]);
    const auto e = policy::migration_cost::estimate_migration(in);
    return scheduler::MoveCost{e.total_seconds, e.downtime_ms, e.copied_mib * 1048576.0, e.converges};
  };
  scheduler::RebalanceOptions options;
  options.max_migrations = std::min(max, config_.scheduler.rebalance_max_migrations);
  options.min_gain = config_.scheduler.rebalance_min_gain;
  options.cost_weight = config_.scheduler.rebalance_cost_weight;
  options.max_bytes = config_.scheduler.rebalance_max_bytes_gib * 1073741824.0;
  const scheduler::RebalancePlan plan = scheduler::plan_rebalance(engine, *table, std::move(vms), cost, options);
  json moves = json::array();
  for (const auto& m : plan.moves) {
    moves.push_back({{"vm", m.vm},
                     {"vm_id", m.vm_id},
                     {"from", m.from},
                     {"to", m.to},
                     {"gain", m.fixes ? json(nullptr) : json(m.gain)},
                     {"fixes", m.fixes},
                     {"reason", m.reason},
                     {"estimated_seconds", m.cost.seconds},
                     {"estimated_downtime_ms", m.cost.downtime_ms},
                     {"bytes", m.cost.bytes},
                     {"converges", m.cost.converges}});
  }
  json body = {{"dry_run", true},
               {"scope", scope},
               {"node", config_.node_name},
               {"moves", moves},
               {"evaluated", plan.evaluated},
               {"score_before", plan.score_before},
               {"score_after", plan.score_after},
               {"summary", plan.summary}};
  if (scope == "cluster" && peers_ != nullptr && config_.cluster) {
    // Each node proposes moves of its own VMs; merged by gain (fixes first), at most `max`.
    json notes = json::array();
    for (const auto& p : config_.cluster->peers) {
      auto r =
          peers_->call(p.name, "POST", "/v1/placements:rebalance?dry_run=true&scope=local&max=" + std::to_string(max),
                       "", std::chrono::milliseconds(config_.scheduler.claim_timeout_ms * 6));
      json j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
      if (!j.is_object() || !j.contains("moves")) {
        notes.push_back(p.name + ": no proposal (" + (r ? "answered " + std::to_string(r->status) : r.error().message) +
                        ")");
        continue;
      }
      for (auto& m : j["moves"]) moves.push_back(m);
    }
    std::stable_sort(moves.begin(), moves.end(), [](const json& a, const json& b) {
      if (a["fixes"] != b["fixes"]) return a["fixes"].get<bool>();
      return a["gain"].is_number() && b["gain"].is_number() && a["gain"].get<double>() > b["gain"].get<double>();
    });
    if (moves.size() > max) moves.erase(moves.begin() + static_cast<std::ptrdiff_t>(max), moves.end());
    body["moves"] = moves;
    body["notes"] = notes;
    body["summary"] = std::to_string(moves.size()) + " moves proposed across the cluster";
  }
  return {200, "", "", body};
}

void PlacementService::observe_transfer(const json& e) {
  if (!e.is_object() || e.value("direction", std::string()) != "send" ||
      e.value("state", std::string()) != "succeeded") {
    return;
  }
  const std::string peer = e.value("peer", std::string());
  const auto bytes = e.value("wire_bytes_sent", std::int64_t{0});
  const auto elapsed_ms = e.value("elapsed_ms", std::int64_t{0});
  if (peer.empty() || bytes <= 0 || elapsed_ms <= 0) return;
  sdk::MigrationObservation o;
  o.kind = "transfer";
  o.source = config_.node_name;
  o.target = peer;
  o.bytes = static_cast<std::uint64_t>(bytes);
  o.duration_s = static_cast<double>(elapsed_ms) / 1000.0;
  size_t told = 0;
  for (const auto& p : plugins_.list()) {
    if (p.kind != "scheduling_policy" || p.state != "running" || p.interface_version < 2) continue;
    auto policy = plugins_.scheduling_policy(p.id);
    if (!policy) continue;
    policy->observe_migration(o);
    ++told;
  }
  spdlog::debug("transfer to {}: {} bytes in {} ms observed by {} policies", peer, bytes, elapsed_ms, told);
}

void PlacementService::start_periodic_rebalance() {
  const int minutes = config_.scheduler.rebalance_interval_minutes;
  if (minutes <= 0 || timer_.joinable()) return;
  timer_ = std::thread([this, minutes] {
    std::unique_lock<std::mutex> lock(timer_mutex_);
    while (!timer_wake_.wait_for(lock, std::chrono::minutes(minutes), [this] { return timer_stopping_; })) {
      lock.unlock();
      PlacementAnswer a = rebalance("local", config_.scheduler.rebalance_max_migrations);
      if (a.error_code.empty() && !a.body["moves"].empty()) {
        events_.publish("scheduler.rebalance_proposed", "node/" + config_.node_name, "host", a.body.dump());
        spdlog::info("rebalance: {}", a.body.value("summary", ""));
      } else if (!a.error_code.empty()) {
        spdlog::warn("rebalance: {}: {}", a.error_code, a.message);
      }
      lock.lock();
    }
  });
}

void PlacementService::stop_periodic_rebalance() {
  {
    std::lock_guard<std::mutex> lock(timer_mutex_);
    timer_stopping_ = true;
  }
  timer_wake_.notify_all();
  if (timer_.joinable()) timer_.join();
}

}  // namespace novacron

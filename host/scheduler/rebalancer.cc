#include "host/scheduler/rebalancer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace novacron::scheduler {

namespace {

struct Evaluation {
  double current = std::numeric_limits<double>::quiet_NaN();  // NaN: its node now fails a filter
  double best = -1;
  std::int64_t best_row = -1;
};

// Takes `vm` off its node (and out of its groups' member counts) in `t`, scores every node
// for it, and puts it back.
Evaluation evaluate(const Engine& engine, NodeTable& t, RebalanceVm& vm) {
  t.release(vm.row, vm.query.resources);
  std::vector<GroupMembers> saved = vm.query.members;
  for (auto& m : vm.query.members) {
    for (size_t i = 0; i < m.rows.size(); ++i) {
      if (m.rows[i] == vm.row && m.counts[i] > 0) {
        --m.counts[i];
        --m.members;
      }
    }
  }
  // Where to: the targets as a migration sees them (source_row set: policies such as
  // migration-cost score the move itself and may refuse targets, e.g. over a downtime limit).
  // How much better: both nodes under the placement view, one normalisation, so that the
  // current node is not penalised for not being a move.
  vm.query.source_row = -1;
  const std::vector<double> totals = engine.totals(vm.query, t);
  vm.query.source_row = static_cast<std::int32_t>(vm.row);
  const std::vector<double> targets = engine.totals(vm.query, t);
  vm.query.source_row = -1;
  vm.query.members = std::move(saved);
  t.commit(vm.row, vm.query.resources);
  Evaluation e;
  e.current = totals[vm.row];
  double best_target = -1;
  for (std::uint32_t row = 0; row < targets.size(); ++row) {
    if (row == vm.row || std::isnan(targets[row]) || std::isnan(totals[row])) continue;
    if (targets[row] > best_target) {
      best_target = targets[row];
      e.best = totals[row];
      e.best_row = row;
    }
  }
  return e;
}

// Moves `vm` to `to` in the table and in every VM's view of the groups they share.
void apply(NodeTable& t, std::vector<RebalanceVm>& vms, size_t index, std::uint32_t to) {
  RebalanceVm& vm = vms[index];
  const std::uint32_t from = vm.row;
  t.release(from, vm.query.resources);
  t.commit(to, vm.query.resources);
  vm.row = to;
  for (size_t g = 0; g < vm.query.groups.size(); ++g) {
    const std::string& name = vm.query.groups[g].name;
    for (auto& other : vms) {
      for (size_t h = 0; h < other.query.groups.size() && h < other.query.members.size(); ++h) {
        if (other.query.groups[h].name != name) continue;
        GroupMembers& m = other.query.members[h];
        for (size_t i = 0; i < m.rows.size(); ++i) {
          if (m.rows[i] == from && m.counts[i] > 0) --m.counts[i];
        }
        auto it = std::find(m.rows.begin(), m.rows.end(), to);
        if (it == m.rows.end()) {
          m.rows.push_back(to);
          m.counts.push_back(1);
        } else {
          ++m.counts[static_cast<size_t>(it - m.rows.begin())];
        }
      }
    }
  }
}

double mean_score(const Engine& engine, NodeTable& t, std::vector<RebalanceVm>& vms) {
  double sum = 0;
  size_t n = 0;
  for (auto& vm : vms) {
    const Evaluation e = evaluate(engine, t, vm);
    if (!std::isnan(e.current)) {
      sum += e.current;
      ++n;
    }
  }
  return n == 0 ? 0 : sum / static_cast<double>(n);
}

}  // namespace

RebalancePlan plan_rebalance(const Engine& engine, const NodeTable& nodes, std::vector<RebalanceVm> vms,
                             const CostFunction& cost, const RebalanceOptions& options) {
  RebalancePlan plan;
  NodeTable t = nodes.clone();
  // The fullest nodes' VMs first (where moves help most), bounded.
  const auto fill = [&](std::uint32_t row) {
    double share = 0;
    for (size_t r = 0; r < kResources; ++r) {
      const auto res = static_cast<Resource>(r);
      share = std::max(share, static_cast<double>(t.allocated(res)[row]) * t.inv_usable(res)[row]);
    }
    return share;
  };
  std::stable_sort(vms.begin(), vms.end(), [&](const RebalanceVm& a, const RebalanceVm& b) {
    return fill(a.row) > fill(b.row) || (fill(a.row) == fill(b.row) && a.name < b.name);
  });
  if (vms.size() > options.max_evaluated) vms.resize(options.max_evaluated);
  plan.evaluated = vms.size();
  plan.score_before = mean_score(engine, t, vms);
  double bytes = 0;
  std::vector<bool> moved(vms.size(), false);
  while (plan.moves.size() < options.max_migrations) {
    double best_net = -std::numeric_limits<double>::infinity();
    size_t best_vm = vms.size();
    Evaluation best_eval;
    MoveCost best_cost;
    for (size_t i = 0; i < vms.size(); ++i) {
      if (moved[i]) continue;  // one move per VM per plan
      const Evaluation e = evaluate(engine, t, vms[i]);
      if (e.best_row < 0) continue;
      const bool fixes = std::isnan(e.current);
      const double gain = fixes ? std::numeric_limits<double>::infinity() : e.best - e.current;
      if (!fixes && gain < options.min_gain) continue;
      const MoveCost c = cost(vms[i], vms[i].row, static_cast<std::uint32_t>(e.best_row));
      if (bytes + c.bytes > options.max_bytes) continue;
      const double net = gain - options.cost_weight * c.seconds / 600.0;
      if (!fixes && net < options.min_gain) continue;
      if (net > best_net) {
        best_net = net;
        best_vm = i;
        best_eval = e;
        best_cost = c;
      }
    }
    if (best_vm == vms.size()) break;
    RebalanceVm& vm = vms[best_vm];
    Proposal p;
    p.vm = vm.name;
    p.vm_id = vm.id;
    p.from = t.name(vm.row);
    p.to = t.name(static_cast<std::uint32_t>(best_eval.best_row));
    p.fixes = std::isnan(best_eval.current);
    p.gain = p.fixes ? best_eval.best : best_eval.best - best_eval.current;
    p.cost = best_cost;
    p.reason = p.fixes ? p.from + " no longer passes the filters for it (a broken rule or an overcommitted node)"
                       : "score " + std::to_string(best_eval.current).substr(0, 5) + " on " + p.from + ", " +
                             std::to_string(best_eval.best).substr(0, 5) + " on " + p.to;
    bytes += best_cost.bytes;
    apply(t, vms, best_vm, static_cast<std::uint32_t>(best_eval.best_row));
    moved[best_vm] = true;
    plan.moves.push_back(std::move(p));
  }
  plan.score_after = plan.moves.empty() ? plan.score_before : mean_score(engine, t, vms);
  plan.summary = plan.moves.empty()
                     ? "balanced: no move of the " + std::to_string(plan.evaluated) + " VMs evaluated gains at least " +
                           std::to_string(options.min_gain).substr(0, 4)
                     : std::to_string(plan.moves.size()) + " moves raise the mean score from " +
                           std::to_string(plan.score_before).substr(0, 5) + " to " +
                           std::to_string(plan.score_after).substr(0, 5);
  return plan;
}

}  // namespace novacron::scheduler

// The rebalancer (docs/scheduler.md, "Rebalancing"): a bounded list of migrations that would
// raise the cluster's placement score, each with its expected gain and cost. Pure: it works
// on a copy of the node table with the same engine (policies and weights) that places VMs,
// so "better" means what the scheduler means by it.
//
//   1. Every VM is evaluated as if it were being placed now, with its own resources taken
//      off its node: the total score of its node against the best other node, under one
//      normalisation. A VM whose own node now fails a filter (a broken hard rule, an
//      overcommitted node) is a fix: it is proposed first, whatever the gain.
//   2. Greedy: the move with the best gain - cost_weight x cost / 600 s is taken and applied
//      to the copy, and the candidates are evaluated again; until max_migrations, the byte
//      budget, or no move gains at least min_gain.
// Nothing is executed; until the migration orchestrator exists, the proposal is the output.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"

namespace novacron::scheduler {

struct RebalanceVm {
  std::string name, id;
  std::uint32_t row = 0;  // where it runs
  PlacementQuery query;   // as if it were being placed: resources, groups (members incl. itself), class
};

struct MoveCost {
  double seconds = 0;
  double downtime_ms = 0;
  double bytes = 0;
  bool converges = true;
};

struct RebalanceOptions {
  size_t max_migrations = 10;
  double min_gain = 0.05;    // in total score (sum of weights x normalised scores)
  double cost_weight = 0.5;  // gain units per 600 s of migration time
  double max_bytes = 256.0 * (1ull << 30);
  size_t max_evaluated = 1000;  // VMs evaluated, fullest nodes first
};

struct Proposal {
  std::string vm, vm_id, from, to;
  double gain = 0;     // total score at `to` minus at `from`
  bool fixes = false;  // its node fails a filter now: the move fixes a broken rule
  std::string reason;  // the filter its node fails, or what improves
  MoveCost cost;
};

struct RebalancePlan {
  std::vector<Proposal> moves;
  double score_before = 0, score_after = 0;  // mean total of the VMs at their nodes
  size_t evaluated = 0;
  std::string summary;
};

using CostFunction = std::function<MoveCost(const RebalanceVm& vm, std::uint32_t from, std::uint32_t to)>;

RebalancePlan plan_rebalance(const Engine& engine, const NodeTable& nodes, std::vector<RebalanceVm> vms,
                             const CostFunction& cost, const RebalanceOptions& options);

}  // namespace novacron::scheduler

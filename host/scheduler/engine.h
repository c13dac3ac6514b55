// The placement engine (docs/design/scheduler.md 1.2): filters, then scorers with weights
// from the config, normalised scores, a deterministic tie-break, and a compact record of why.
// Pure: it reads and (on commit) updates a NodeTable, nothing else.
//
//   1. Rows that are not ready are out (reason "not_ready").
//   2. Each filter, in order, over the rows still in; rejections are counted per reason code
//      with up to 3 example nodes.
//   3. Candidates: every feasible row, or, past `max_scored`, half the fullest (dominant
//      share after placement), a quarter the emptiest and the rest a seeded sample.
//   4. Each scorer's raw scores; unit scores clamped to [0, 1], relative ones min-max
//      normalised over the candidates (all equal: 0, no influence); non-finite: 0.
//   5. total = sum of weight x normalised score. Order: total (to 2^-20) descending, then a
//      hash of (seed, node name), then the name: shuffling the nodes never changes the choice,
//      and equal nodes do not all go to the first name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/scheduler/node_table.h"
#include "host/scheduler/policy.h"

namespace novacron::scheduler {

struct WeightedPolicy {
  const PlacementPolicy* policy = nullptr;
  double weight = 1.0;  // scorers only
};

struct EngineOptions {
  size_t top_k = 3;
  size_t max_scored = 1024;  // 0 = score every feasible node
};

struct Rejections {
  std::string policy;  // "engine" for the not-ready step
  struct Example {
    std::string node;
    std::string text;  // the policy's words for this node ("memory: needs 8192 MiB, ...")
  };
  struct Reason {
    std::uint8_t code = 0;
    std::string code_name;  // stable identifier ("memory")
    std::string text;       // short text ("not enough memory")
    size_t nodes = 0;
    std::vector<Example> examples;  // up to 3 nodes
  };
  std::vector<Reason> reasons;
  size_t rejected = 0;
};

struct ScoredCandidate {
  std::uint32_t row = 0;
  std::string node;
  double total = 0;
  std::vector<double> raw, normalised, weighted;  // per scorer, in config order
  std::vector<std::string> reasons;               // per scorer: its words for this node
};

// Why one node could not take the request: its first rejection.
struct NodeRejection {
  std::string node, policy, code, text;
};

enum class Outcome : std::uint8_t {
  kPlaced,
  kNoFeasibleNode,  // every node was rejected; the filters say why
  kInvalid,         // a policy refused the request itself (error names the field)
  kUnavailable,     // a filter failed: the placement cannot be decided safely
};
const char* outcome_name(Outcome outcome);

struct Decision {
  Outcome outcome = Outcome::kNoFeasibleNode;
  std::string error;  // kInvalid / kUnavailable
  bool placed = false;
  std::optional<std::uint32_t> row;
  std::string node;
  size_t nodes_total = 0, feasible = 0, scored = 0;
  std::vector<Rejections> filters;
  std::vector<std::string> scorers;         // names, in the order of ScoredCandidate's vectors
  std::vector<double> weights;              // per scorer
  std::vector<std::string> skipped;         // policies that do not apply to this request
  std::vector<std::string> notes;           // e.g. a scorer that failed and counted 0
  std::vector<ScoredCandidate> top;         // best first
  std::vector<NodeRejection> node_reasons;  // when nothing fits: each node's first rejection (up to 100)
  bool tie = false;                         // the best two totals were equal: the tie-break chose
  std::string summary;                      // one line: why placed here, or why nowhere
};

// Every node's verdicts and scores (the full explanation, on request).
struct NodeDetail {
  std::string node;
  bool ready = true;
  struct Verdict {
    std::string policy;
    bool pass = true;
    std::string code;  // "" when it passes
    std::string text;
  };
  std::vector<Verdict> filters;  // every filter, no short circuit
  bool feasible = false;
  std::vector<double> raw, normalised;  // per scorer (feasible nodes only)
  std::vector<std::string> reasons;     // per scorer
  double total = 0;
  size_t rank = 0;  // 1 = chosen; 0 = not feasible
};

class Engine {
 public:
  Engine(std::vector<WeightedPolicy> filters, std::vector<WeightedPolicy> scorers, EngineOptions options = {});

  // Decides; with `commit`, the chosen row's allocation grows by the request.
  Decision place(const PlacementQuery& query, NodeTable& nodes, bool commit) const;

  // Every node's verdicts (no short circuit) and, over all feasible nodes, scores and rank.
  // At most `max_nodes` nodes are listed: the chosen one first, then by rank, then the rest.
  std::vector<NodeDetail> detail(const PlacementQuery& query, const NodeTable& nodes, size_t max_nodes) const;

  // The total score of every row for this request, all feasible rows scored and normalised
  // together (max_scored ignored); NaN for rows that are not ready or that a filter rejects.
  // What the rebalancer compares a VM's current node with. No words, no commit.
  std::vector<double> totals(const PlacementQuery& query, const NodeTable& nodes) const;

  const std::vector<WeightedPolicy>& filters() const { return filters_; }
  const std::vector<WeightedPolicy>& scorers() const { return scorers_; }
  const EngineOptions& options() const { return options_; }

 private:
  // What the filters left out of a placement, for the candidate walk: rows not ready or
  // rejected, counted per fill bucket and stamped per row (stamps[row] == generation; the
  // walk stamps the rows it chooses generation + 1; older stamps mean nothing).
  struct Rejected {
    std::span<const std::uint32_t> per_bucket;
    std::uint8_t* stamps = nullptr;
    std::uint8_t generation = 0;
  };
  std::vector<std::uint32_t> candidates(const PlacementQuery& q, const NodeTable& nodes,
                                        const std::vector<std::uint32_t>& feasible, const Rejected& rejected) const;
  // Normalised scores of `rows` for scorer p; raw in `raw`. Returns a note when it failed.
  std::string score_rows(const PolicyContext& ctx, size_t p, std::span<const std::uint32_t> rows,
                         std::vector<double>& raw, std::vector<double>& norm) const;

  std::vector<WeightedPolicy> filters_, scorers_;
  EngineOptions options_;
};

// FNV-1a of a name: the default seed of a query.
std::uint64_t seed_of(std::string_view name);

}  // namespace novacron::scheduler

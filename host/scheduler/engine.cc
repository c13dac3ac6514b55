#include "host/scheduler/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace novacron::scheduler {

namespace {

constexpr size_t kExamples = 3;
constexpr std::uint8_t kNotReady = 1;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The largest share of any resource a row would have in use after the placement.
double dominant_share_after(const NodeTable& t, std::uint32_t row, const ResourceVector& add) {
  double share = 0;
  for (size_t r = 0; r < kResources; ++r) {
    const auto res = static_cast<Resource>(r);
    const std::int64_t usable = t.capacity(res)[row] - t.reserved(res)[row];
    if (usable <= 0) continue;
    share = std::max(share, static_cast<double>(t.allocated(res)[row] + add[r]) / static_cast<double>(usable));
  }
  return share;
}

void count_rejection(Rejections& rej, const PlacementPolicy* policy, std::uint8_t code, const std::string& node) {
  auto it = std::find_if(rej.reasons.begin(), rej.reasons.end(), [&](const auto& r) { return r.code == code; });
  if (it == rej.reasons.end()) {
    Rejections::Reason reason;
    reason.code = code;
    reason.text = policy != nullptr ? policy->reason(code) : "the node is not ready (unreachable or cordoned)";
    rej.reasons.push_back(std::move(reason));
    it = rej.reasons.end() - 1;
  }
  ++it->nodes;
  ++rej.rejected;
  if (it->examples.size() < kExamples) it->examples.push_back(node);
}

}  // namespace

std::uint64_t seed_of(std::string_view name) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

Engine::Engine(std::vector<WeightedPolicy> filters, std::vector<WeightedPolicy> scorers, EngineOptions options)
    : filters_(std::move(filters)), scorers_(std::move(scorers)), options_(options) {}

std::vector<std::uint32_t> Engine::candidates(const PlacementQuery& q, const NodeTable& nodes,
                                              const std::vector<std::uint32_t>& feasible) const {
  if (options_.max_scored == 0 || feasible.size() <= options_.max_scored) return feasible;
  // Fullest first (what packing wants), emptiest (what spreading wants), then a sample
  // seeded by the request. Each feasible row gets one integer key: its fill after placement
  // (dominant share, to 2^-20) above a hash of (request seed, node name) for ties, so that
  // the set does not depend on node order and every comparison is one integer compare
  // (selections over structs compared field by field cost 3x as much here).
  struct Keyed {
    std::uint64_t key;
    std::uint32_t row;
  };
  constexpr int kFillBits = 21;  // fill in [0, 2) to 2^-20
  const auto fill_key = [&](std::uint32_t row) {
    const double fill = std::min(dominant_share_after(nodes, row, q.resources), 1.999999);
    return static_cast<std::uint64_t>(fill * (1 << (kFillBits - 1)));
  };
  std::vector<Keyed> keyed;
  keyed.reserve(feasible.size());
  for (const auto row : feasible) {
    const std::uint64_t tie = splitmix64(q.seed ^ nodes.name_hash(row)) >> kFillBits;
    keyed.push_back({(fill_key(row) << (64 - kFillBits)) | tie, row});
  }
  const auto by_key = [](const Keyed& a, const Keyed& b) { return a.key < b.key; };
  // Two selections, O(n) each: the m/4 emptiest to the front, the m/2 fullest to the back.
  const size_t m = options_.max_scored;
  const auto front = keyed.begin() + static_cast<std::ptrdiff_t>(m / 4);
  const auto back = keyed.end() - static_cast<std::ptrdiff_t>(m / 2);
  std::nth_element(keyed.begin(), back, keyed.end(), by_key);
  std::nth_element(keyed.begin(), front, back, by_key);
  std::vector<std::uint32_t> out;
  out.reserve(m);
  for (auto it = back; it != keyed.end(); ++it) out.push_back(it->row);
  for (auto it = keyed.begin(); it != front; ++it) out.push_back(it->row);
  // The rest: the middle rows with the smallest tie hashes (a sample seeded by the request).
  const size_t sample = std::min<size_t>(m - out.size(), static_cast<size_t>(back - front));
  for (auto it = front; it != back; ++it) it->key <<= kFillBits;  // the hash alone
  const auto mid = front + static_cast<std::ptrdiff_t>(sample);
  std::nth_element(front, mid, back, by_key);
  for (auto it = front; it != mid; ++it) out.push_back(it->row);
  return out;
}

Decision Engine::place(const PlacementQuery& q, NodeTable& nodes, bool commit) const {
  Decision d;
  d.nodes_total = nodes.rows();
  // 1. Ready rows only.
  std::vector<std::uint32_t> rows;
  rows.reserve(nodes.rows());
  Rejections engine_step;
  engine_step.policy = "engine";
  for (std::uint32_t row = 0; row < nodes.rows(); ++row) {
    if (nodes.state(row) == NodeState::kReady) {
      rows.push_back(row);
    } else {
      count_rejection(engine_step, nullptr, kNotReady, nodes.name(row));
    }
  }
  if (engine_step.rejected > 0) d.filters.push_back(std::move(engine_step));
  // 2. Filters, each over what is left.
  std::vector<std::uint8_t> codes;
  for (const auto& f : filters_) {
    Rejections rej;
    rej.policy = std::string(f.policy->name());
    codes.assign(rows.size(), 0);
    f.policy->filter(q, nodes, rows, codes);
    size_t kept = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (codes[i] == 0) {
        rows[kept++] = rows[i];
      } else {
        count_rejection(rej, f.policy, codes[i], nodes.name(rows[i]));
      }
    }
    rows.resize(kept);
    d.filters.push_back(std::move(rej));
  }
  d.feasible = rows.size();
  if (rows.empty()) {
    d.summary = "no node fits: " + std::to_string(d.nodes_total) + " nodes, all rejected";
    for (const auto& f : d.filters) {
      for (const auto& r : f.reasons) {
        d.summary += "; " + f.policy + ": " + std::to_string(r.nodes) + " " + r.text;
      }
    }
    return d;
  }
  // 3-4. Candidates and their scores.
  const std::vector<std::uint32_t> cand = candidates(q, nodes, rows);
  d.scored = cand.size();
  const size_t s = scorers_.size();
  std::vector<std::vector<double>> raw(s, std::vector<double>(cand.size(), 0.0));
  std::vector<std::vector<double>> norm(s, std::vector<double>(cand.size(), 0.0));
  for (size_t p = 0; p < s; ++p) {
    d.scorers.emplace_back(scorers_[p].policy->name());
    scorers_[p].policy->score(q, nodes, cand, raw[p]);
    const bool unit = scorers_[p].policy->scale() == ScoreScale::kUnit;
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
    for (const double v : raw[p]) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    for (size_t i = 0; i < cand.size(); ++i) {
      const double v = raw[p][i];
      if (!std::isfinite(v)) continue;
      norm[p][i] = unit ? std::clamp(v, 0.0, 1.0) : (hi > lo ? (v - lo) / (hi - lo) : 0.0);
    }
  }
  // 5. Totals and the deterministic order.
  struct Ranked {
    std::int64_t total_key;
    std::uint64_t tie_key;
    std::uint32_t index;
    double total;
  };
  std::vector<Ranked> ranked(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) {
    double total = 0;
    for (size_t p = 0; p < s; ++p) total += scorers_[p].weight * norm[p][i];
    ranked[i] = Ranked{std::llround(total * 1048576.0), splitmix64(q.seed ^ nodes.name_hash(cand[i])),
                       static_cast<std::uint32_t>(i), total};
  }
  const auto better = [&](const Ranked& a, const Ranked& b) {
    if (a.total_key != b.total_key) return a.total_key > b.total_key;
    if (a.tie_key != b.tie_key) return a.tie_key < b.tie_key;
    return nodes.name(cand[a.index]) < nodes.name(cand[b.index]);
  };
  const size_t k = std::min(std::max<size_t>(1, options_.top_k), ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end(), better);
  for (size_t j = 0; j < k; ++j) {
    const Ranked& r = ranked[j];
    ScoredCandidate c;
    c.row = cand[r.index];
    c.node = nodes.name(c.row);
    c.total = r.total;
    for (size_t p = 0; p < s; ++p) {
      c.raw.push_back(raw[p][r.index]);
      c.normalised.push_back(norm[p][r.index]);
      c.weighted.push_back(scorers_[p].weight * norm[p][r.index]);
    }
    d.top.push_back(std::move(c));
  }
  d.tie = k > 1 && ranked[0].total_key == ranked[1].total_key;
  d.placed = true;
  d.row = d.top.front().row;
  d.node = d.top.front().node;
  d.summary = "placed on " + d.node + ": best of " + std::to_string(d.scored) + " scored, " +
              std::to_string(d.feasible) + " of " + std::to_string(d.nodes_total) + " nodes fit" +
              (d.tie ? " (a tie, broken by the request's seed)" : "");
  if (commit) nodes.commit(*d.row, q.resources);
  return d;
}

}  // namespace novacron::scheduler

#include "host/scheduler/engine.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
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
    share = std::max(share, static_cast<double>(t.allocated(res)[row] + add[r]) * t.inv_usable(res)[row]);
  }
  return share;
}

struct Keyed {
  std::uint64_t key;
  std::uint32_t row;
};

// Calls f(i) for each i with codes[i] != 0, in order, until f answers false. Eight codes are
// read as one word: a word of passing rows is skipped, and in the others the rejected rows
// are found from a mask of their bytes (no branch per row to mispredict).
template <typename F>
void for_each_rejected(std::span<const std::uint8_t> codes, F&& f) {
  constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  const size_t n = codes.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, codes.data() + i, sizeof word);
    if (word == 0) continue;
    // The high bit of each byte that is not zero (exact: no carries between bytes).
    std::uint64_t nonzero = (((word & kLow7) + kLow7) | word) & ~kLow7;
    while (nonzero != 0) {
      if (!f(i + static_cast<size_t>(std::countr_zero(nonzero) >> 3))) return;
      nonzero &= nonzero - 1;
    }
  }
  for (; i < n; ++i) {
    if (codes[i] != 0 && !f(i)) return;
  }
}

std::string code_error(std::uint8_t code) {
  return "reject code " + std::to_string(code) + " is not among its reason codes";
}

// A filter over `rows` outside the placement path (detail, totals): a code past the
// policy's max_code() is its error.
std::string run_filter(const PlacementPolicy& policy, const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                       std::span<std::uint8_t> codes) {
  if (std::string err = policy.filter(ctx, rows, codes); !err.empty()) return err;
  const std::uint8_t highest = codes.empty() ? 0 : *std::max_element(codes.begin(), codes.end());
  return highest > policy.max_code() ? code_error(highest) : std::string();
}

// One filter's rejections: rows per code, and the first rows of each code as examples. The
// count runs over every rejected row, so it only counts (into two tables in turn, so that
// rows with the same code do not wait on each other's increments); the examples come from
// a second pass that stops as soon as it has them; the policy's words for the examples are
// asked for once, at the end.
class RejectionTally {
 public:
  // Counts every rejected row; on_rejected(i) sees each too.
  template <typename F>
  void count(std::span<const std::uint8_t> codes, F&& on_rejected) {
    unsigned turn = 0;
    for_each_rejected(codes, [&](size_t i) {
      ++counts_[turn][codes[i]];
      turn ^= 1u;
      on_rejected(i);
      return true;
    });
    for (size_t c = 0; c < 256; ++c) counts_[0][c] += counts_[1][c];
  }
  // The highest code counted (0 when none).
  std::uint8_t highest() const {
    for (size_t c = 255; c > 0; --c) {
      if (counts_[0][c] != 0) return static_cast<std::uint8_t>(c);
    }
    return 0;
  }

  // Records the first kExamples rows of each code (rows[i] for codes[i]) and the order codes
  // first occur in; `each(i)` sees every rejected row until both are complete and it
  // answers false.
  template <typename F>
  void collect_examples(std::span<const std::uint8_t> codes, std::span<const std::uint32_t> rows, F&& each) {
    size_t wanted = 0;
    for (size_t c = 1; c < 256; ++c) wanted += std::min<size_t>(counts_[0][c], kExamples);
    std::array<std::uint8_t, 256> taken{};
    bool more = true;
    for_each_rejected(codes, [&](size_t i) {
      const std::uint8_t code = codes[i];
      if (taken[code] == 0) order_.push_back(code);
      if (taken[code] < kExamples) {
        ++taken[code];
        examples_.emplace_back(code, rows[i]);
        --wanted;
      }
      more = more && each(i);
      return more || wanted > 0;
    });
  }

  // The counts as Rejections, reasons in the order they first occurred; `policy` null is
  // the engine's own not-ready step.
  Rejections finish(std::string name, const PolicyContext& ctx, const PlacementPolicy* policy,
                    const NodeTable& nodes) const {
    Rejections rej;
    rej.policy = std::move(name);
    for (const std::uint8_t code : order_) {
      Rejections::Reason reason;
      reason.code = code;
      reason.code_name = policy != nullptr ? policy->reason_code(code) : "not_ready";
      reason.text = policy != nullptr ? policy->reason(code) : "the node is not ready (unreachable or cordoned)";
      reason.nodes = counts_[0][code];
      rej.rejected += counts_[0][code];
      for (const auto& [example_code, row] : examples_) {
        if (example_code != code) continue;
        std::string text = reason.text;
        if (policy != nullptr) {
          if (auto e = policy->explain(ctx, row); !e.verdict.empty()) text = std::move(e.verdict);
        }
        reason.examples.push_back({nodes.name(row), std::move(text)});
      }
      rej.reasons.push_back(std::move(reason));
    }
    return rej;
  }

 private:
  std::array<std::array<std::uint32_t, 256>, 2> counts_{};
  std::vector<std::uint8_t> order_;
  std::vector<std::pair<std::uint8_t, std::uint32_t>> examples_;
};

// Keeps in[i] where codes[i] == 0, in order, in out (which may be `in` itself). Most rows
// pass: eight passing rows move as one block (or not at all, in place before the first
// rejection); a block with a rejection is compacted without a branch per row.
size_t keep_passing(std::span<const std::uint32_t> in, std::span<const std::uint8_t> codes, std::uint32_t* out) {
  const size_t n = in.size();
  size_t kept = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, codes.data() + i, sizeof word);
    if (word == 0) {
      // Through a buffer: the ranges may overlap in place, and a fixed 32-byte copy is
      // two vector moves where memmove would be a library call.
      std::uint32_t block[8];
      std::memcpy(block, in.data() + i, sizeof block);
      std::memcpy(out + kept, block, sizeof block);
      kept += 8;
      continue;
    }
    for (size_t j = i; j < i + 8; ++j) {
      out[kept] = in[j];
      kept += codes[j] == 0 ? 1 : 0;
    }
  }
  for (; i < n; ++i) {
    out[kept] = in[i];
    kept += codes[i] == 0 ? 1 : 0;
  }
  return kept;
}

constexpr size_t kMaxNodeReasons = 100;

// The k-th largest of `keys` (1 <= k <= keys.size()): by insertion into the k best for a
// small k, by selection otherwise.
std::int64_t kth_largest(const std::vector<std::int64_t>& keys, size_t k) {
  constexpr size_t kInsertion = 8;
  if (k > kInsertion) {
    std::vector<std::int64_t> copy(keys);
    std::nth_element(copy.begin(), copy.begin() + static_cast<std::ptrdiff_t>(k - 1), copy.end(), std::greater<>());
    return copy[k - 1];
  }
  std::array<std::int64_t, kInsertion> best;
  best.fill(std::numeric_limits<std::int64_t>::min());
  for (const std::int64_t key : keys) {
    if (key <= best[k - 1]) continue;
    size_t j = k - 1;
    for (; j > 0 && best[j - 1] < key; --j) best[j] = best[j - 1];
    best[j] = key;
  }
  return best[k - 1];
}

// A total score as an integer key (2^-20 steps, rounded half away from zero), so that
// totals equal up to floating-point noise tie exactly. Inline: llround is a library call,
// and every candidate of every placement is keyed.
std::int64_t total_key(double total) {
  const double scaled = total * 1048576.0;
  return static_cast<std::int64_t>(scaled + (scaled < 0 ? -0.5 : 0.5));
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

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPlaced:
      return "placed";
    case Outcome::kNoFeasibleNode:
      return "no_feasible_node";
    case Outcome::kInvalid:
      return "invalid";
    case Outcome::kUnavailable:
      return "scheduler_unavailable";
  }
  return "unknown";
}

namespace {

sdk::PlacementQuery make_sdk_query(const PlacementQuery& q, const NodeTable& t, const sdk::PlacementRequest& v1,
                                   std::span<const sdk::GroupState> groups) {
  sdk::PlacementQuery s;
  s.request = &v1;
  for (size_t r = 0; r < kResources; ++r) s.resources[r] = q.resources[r];
  if (!q.driver.empty()) {
    const auto d = t.driver_index(q.driver);
    s.driver = d ? static_cast<std::int32_t>(*d) : static_cast<std::int32_t>(NodeTable::kMaxDrivers);  // none has it
  }
  for (const auto& cap : q.capabilities) {
    const auto c = t.capability_index(cap);
    if (c) {
      s.capabilities |= 1u << *c;
    } else {
      s.unknown_capability = true;
    }
  }
  s.groups = groups;
  s.constraints = q.constraints;
  s.source_row = q.source_row;
  s.seed = q.seed;
  s.workload_class = q.workload_class;
  for (size_t r = 0; r < kResources; ++r) s.predicted[r] = q.predicted[r];
  return s;
}

sdk::PlacementRequest make_v1_request(const PlacementQuery& q) {
  sdk::PlacementRequest r;
  r.name = q.name;
  r.tenant = q.tenant;
  r.resources.vcpus = static_cast<double>(q.resources[kCpu]) / 1000.0;
  r.resources.memory_mib = q.resources[kMemory];
  r.resources.disk_gib = q.resources[kDisk];
  r.driver = q.driver;
  r.capabilities = q.capabilities;
  for (const auto& [k, v] : q.labels) r.labels.emplace_back(k, v);
  for (const auto& g : q.groups) r.groups.push_back(g.name);
  return r;
}

std::vector<sdk::GroupState> make_groups(const PlacementQuery& q) {
  std::vector<sdk::GroupState> out;
  out.reserve(q.groups.size());
  for (size_t i = 0; i < q.groups.size(); ++i) {
    const GroupSpec& g = q.groups[i];
    sdk::GroupState s;
    s.rule = {g.name, g.affinity, g.hard, g.scope, g.max_per_domain};
    if (i < q.members.size()) {
      s.rows = q.members[i].rows;
      s.counts = q.members[i].counts;
      s.members = q.members[i].members;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

PolicyContext::PolicyContext(const PlacementQuery& q, const NodeTable& t)
    : query(q),
      table(t),
      columns(t.columns()),
      request_v1_(make_v1_request(q)),
      groups_(make_groups(q)),
      sdk_(make_sdk_query(q, t, request_v1_, groups_)) {}

Engine::Engine(std::vector<WeightedPolicy> filters, std::vector<WeightedPolicy> scorers, EngineOptions options)
    : filters_(std::move(filters)), scorers_(std::move(scorers)), options_(options) {}

std::vector<std::uint32_t> Engine::candidates(const PlacementQuery& q, const NodeTable& nodes,
                                              const std::vector<std::uint32_t>& feasible,
                                              const Rejected& rejected) const {
  const size_t m = options_.max_scored;
  if (m == 0 || feasible.size() <= m) return feasible;
  // Past max_scored: the m/2 fullest rows (what packing wants), the m/4 emptiest (what
  // spreading wants), and a sample seeded by the request, all independent of node order.
  // The table keeps rows in fill buckets, so the fullest and emptiest are found by walking
  // buckets from either end, not by looking at every row; only the rows of the buckets
  // walked get an exact key: fill after placement (to 2^-20) above a hash of (seed, node).
  // A row is open (feasible, not chosen yet) while its stamp is older than this placement's
  // generation; no per-row pass over the table is needed to know it.
  std::uint8_t* const stamp = rejected.stamps;
  const std::uint8_t rejected_stamp = rejected.generation, chosen_stamp = rejected.generation + 1;
  const auto open = [&](std::uint32_t row) { return stamp[row] < rejected_stamp; };
  constexpr int kFillBits = 21;
  const auto key_of = [&](std::uint32_t row) {
    const double fill = std::min(dominant_share_after(nodes, row, q.resources), 1.999999);
    const auto fill_key = static_cast<std::uint64_t>(fill * (1 << (kFillBits - 1)));
    return (fill_key << (64 - kFillBits)) | (splitmix64(q.seed ^ nodes.name_hash(row)) >> kFillBits);
  };
  const auto by_key = [](const Keyed& a, const Keyed& b) { return a.key < b.key; };
  std::vector<std::uint32_t> out;
  out.reserve(m);
  // A seeded window of the table's name-hash order: up to `want` rows that `pick`, found
  // without looking at every row (the order does not depend on how nodes were listed).
  std::vector<std::uint32_t> window_rows;
  const auto window = [&](std::uint64_t salt, size_t want, auto&& pick) {
    window_rows.clear();
    const auto& order = nodes.by_name_hash();
    const size_t n = order.size();
    const size_t start = static_cast<size_t>(splitmix64(q.seed ^ salt) % n);
    for (size_t i = 0; i < n && window_rows.size() < want; ++i) {
      const std::uint32_t row = order[start + i < n ? start + i : start + i - n];
      if (pick(row)) window_rows.push_back(row);
    }
    return window_rows;
  };
  std::vector<Keyed> pool;
  // Chooses `want` of the rows that `pick` (there are `available` of them, all in `list`),
  // independently of node order: a window of the hash order when that finds them quickly
  // (it walks about rows x want / available rows), else each listed row keyed by `key`,
  // the `want` lowest kept.
  const auto choose = [&](size_t want, size_t available, std::uint64_t salt, const std::vector<std::uint32_t>& list,
                          auto&& pick, auto&& key) {
    if (available > 2 * want && nodes.rows() * want < 6 * available * available) {
      for (const auto row : window(salt, want, pick)) {
        out.push_back(row);
        stamp[row] = chosen_stamp;
      }
      return;
    }
    pool.clear();
    for (const auto row : list) {
      if (pick(row)) pool.push_back({key(row), row});
    }
    if (pool.size() > want) {
      std::nth_element(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(want), pool.end(), by_key);
      pool.resize(want);
    }
    for (const auto& k : pool) {
      out.push_back(k.row);
      stamp[k.row] = chosen_stamp;
    }
  };
  // Rows already chosen, per bucket: with the rejected ones, what a bucket no longer offers.
  std::array<std::uint32_t, NodeTable::kFillBuckets> chosen_in_bucket{};
  // Whole buckets from one end while they fit in `want`, skipping those with nothing left to
  // offer. In the bucket where `want` is reached, the rest by exact key (fill after
  // placement, then hash) among its rows, or by a window when the bucket offers more than
  // twice what is wanted: a bucket's rows are within 1/1024 of each other before the
  // placement, and the scorers rank the window's rows.
  const auto take = [&](size_t want, bool fullest, std::uint64_t salt) {
    const size_t goal = out.size() + want;
    for (int b = nodes.next_filled_bucket(fullest ? NodeTable::kFillBuckets - 1 : 0, !fullest);
         b >= 0 && out.size() < goal; b = nodes.next_filled_bucket(fullest ? b - 1 : b + 1, !fullest)) {
      const auto& bucket = nodes.fill_bucket(b);
      const size_t available = bucket.size() - rejected.per_bucket[b] - chosen_in_bucket[b];
      if (available == 0) continue;
      const size_t need = goal - out.size();
      const size_t before = out.size();
      if (available <= need) {
        for (const auto row : bucket) {
          if (!open(row)) continue;
          out.push_back(row);
          stamp[row] = chosen_stamp;
        }
      } else {
        choose(
            need, available, salt, bucket,
            [&](std::uint32_t row) { return open(row) && nodes.bucket_of_row(row) == b; },
            [&](std::uint32_t row) { return fullest ? ~key_of(row) : key_of(row); });
      }
      chosen_in_bucket[b] += static_cast<std::uint32_t>(out.size() - before);
    }
  };
  take(m / 2, true, 0x5bd1e995);
  take(m / 4, false, 0x27d4eb2f165667c5ULL);
  // The sample: seeded, among the rows not chosen yet.
  choose(
      m - out.size(), feasible.size() - out.size(), 0x165667b19e3779f9ULL, feasible,
      [&](std::uint32_t r) { return open(r); },
      [&](std::uint32_t r) { return splitmix64(q.seed ^ 0x165667b19e3779f9ULL ^ nodes.name_hash(r)); });
  return out;
}

std::string Engine::score_rows(const PolicyContext& ctx, size_t p, std::span<const std::uint32_t> rows,
                               std::vector<double>& raw, std::vector<double>& norm) const {
  raw.assign(rows.size(), 0.0);
  norm.resize(rows.size());  // every element is written below
  const PlacementPolicy* policy = scorers_[p].policy;
  if (const std::string err = policy->score(ctx, rows, raw); !err.empty()) {
    std::fill(raw.begin(), raw.end(), 0.0);
    std::fill(norm.begin(), norm.end(), 0.0);
    return std::string(policy->name()) + " failed and counted 0: " + err;
  }
  const bool unit = policy->scale() == ScoreScale::kUnit;
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  for (const double v : raw) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool non_finite = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const double v = raw[i];
    if (!std::isfinite(v)) {
      non_finite = true;
      norm[i] = 0.0;
      continue;
    }
    norm[i] = unit ? std::clamp(v, 0.0, 1.0) : (hi > lo ? (v - lo) / (hi - lo) : 0.0);
  }
  if (non_finite) return std::string(policy->name()) + " gave a non-finite score; it counted 0 there";
  return {};
}

Decision Engine::place(const PlacementQuery& q, NodeTable& nodes, bool commit) const {
  Decision d;
  d.nodes_total = nodes.rows();
  const PolicyContext ctx(q, nodes);
  // 0. The request itself: every policy that applies may refuse it (a constraint that does
  // not parse, a group rule that contradicts itself).
  std::vector<const WeightedPolicy*> active_filters, active_scorers;
  for (const auto& f : filters_) {
    if ((f.policy->applies(ctx) & PlacementPolicy::kFilter) != 0) {
      active_filters.push_back(&f);
    } else {
      d.skipped.emplace_back(f.policy->name());
    }
  }
  for (const auto& sc : scorers_) {
    d.scorers.emplace_back(sc.policy->name());
    d.weights.push_back(sc.weight);
    if ((sc.policy->applies(ctx) & PlacementPolicy::kScorer) != 0) {
      active_scorers.push_back(&sc);
    } else if (std::find(d.skipped.begin(), d.skipped.end(), sc.policy->name()) == d.skipped.end()) {
      d.skipped.emplace_back(sc.policy->name());
    }
  }
  for (const auto* list : {&active_filters, &active_scorers}) {
    for (const WeightedPolicy* p : *list) {
      if (std::string err = p->policy->check(ctx); !err.empty()) {
        d.outcome = Outcome::kInvalid;
        d.error = std::move(err);
        d.summary = "the request is invalid: " + d.error;
        return d;
      }
    }
  }
  // 1. Ready rows only (the table keeps the list). Row lists and codes are per-thread
  // scratch: no allocation of node-sized buffers per placement.
  struct FirstRejection {
    std::uint32_t row;
    const PlacementPolicy* policy;
    std::uint8_t code;
  };
  std::vector<FirstRejection> first_rejection;  // when nothing fits
  // Rows not ready or rejected, per fill bucket: what the candidate walk need not look at.
  // Counted into two tables in turn, as the tally does, then added up.
  thread_local std::array<std::array<std::uint32_t, NodeTable::kFillBuckets>, 2> rejected_counts;
  thread_local std::array<std::uint32_t, NodeTable::kFillBuckets> rejected_in_bucket;
  rejected_counts[0].fill(0);
  rejected_counts[1].fill(0);
  unsigned rejected_turn = 0;
  // Per-row stamps of rejected rows; generations avoid clearing them for every placement.
  thread_local std::vector<std::uint8_t> stamps;
  thread_local std::uint8_t generation = 0;
  if (stamps.size() != nodes.rows() || generation >= 250) {
    stamps.assign(nodes.rows(), 0);
    generation = 0;
  }
  generation += 2;
  std::uint8_t* const stamp = stamps.data();
  const auto reject_row = [&](std::uint32_t row) {
    ++rejected_counts[rejected_turn][nodes.bucket_of_row(row)];
    rejected_turn ^= 1u;
    stamp[row] = generation;
  };
  const std::vector<std::uint32_t>& ready = nodes.ready_rows();
  if (const std::vector<std::uint32_t>& others = nodes.not_ready_rows(); !others.empty()) {
    // The table lists them: a cost in the rows that are not ready, not in every row.
    const std::vector<std::uint8_t> not_ready_codes(others.size(), kNotReady);
    RejectionTally not_ready;
    not_ready.count(not_ready_codes, [&](size_t i) { reject_row(others[i]); });
    not_ready.collect_examples(not_ready_codes, others, [](size_t) { return false; });
    d.filters.push_back(not_ready.finish("engine", ctx, nullptr, nodes));
  }
  // 2. Filters, each over what is left: the first reads the table's ready list, the rest
  // the survivors, compacted in place.
  thread_local std::vector<std::uint32_t> rows;
  thread_local std::vector<std::uint8_t> codes;
  rows.resize(ready.size());
  std::span<const std::uint32_t> alive(ready);
  for (const WeightedPolicy* f : active_filters) {
    codes.assign(alive.size(), 0);
    if (std::string err = f->policy->filter(ctx, alive, codes); !err.empty()) {
      d.outcome = Outcome::kUnavailable;
      d.error = std::string(f->policy->name()) + ": " + err;
      d.summary = "the scheduler cannot decide: filter " + d.error;
      return d;
    }
    RejectionTally tally;
    tally.count(codes, [&](size_t i) { reject_row(alive[i]); });
    if (const std::uint8_t highest = tally.highest(); highest > f->policy->max_code()) {
      d.outcome = Outcome::kUnavailable;
      d.error = std::string(f->policy->name()) + ": " + code_error(highest);
      d.summary = "the scheduler cannot decide: filter " + d.error;
      return d;
    }
    tally.collect_examples(codes, alive, [&](size_t i) {
      if (first_rejection.size() >= kMaxNodeReasons) return false;
      first_rejection.push_back({alive[i], f->policy, codes[i]});
      return true;
    });
    d.filters.push_back(tally.finish(std::string(f->policy->name()), ctx, f->policy, nodes));
    const size_t kept = keep_passing(alive, codes, rows.data());
    alive = std::span<const std::uint32_t>(rows.data(), kept);
  }
  if (active_filters.empty()) {
    rows.assign(ready.begin(), ready.end());
  } else {
    rows.resize(alive.size());
  }
  d.feasible = rows.size();
  if (rows.empty()) {
    d.outcome = Outcome::kNoFeasibleNode;
    d.summary = "no node fits: " + std::to_string(d.nodes_total) + " nodes, all rejected";
    for (const auto& f : d.filters) {
      for (const auto& r : f.reasons) {
        d.summary += "; " + f.policy + ": " + std::to_string(r.nodes) + " " + r.text;
      }
    }
    for (std::uint32_t row = 0; row < nodes.rows() && d.node_reasons.size() < kMaxNodeReasons; ++row) {
      if (nodes.state(row) != NodeState::kReady) {
        d.node_reasons.push_back({nodes.name(row), "engine", "not_ready", "the node is not ready"});
      }
    }
    for (const auto& r : first_rejection) {
      if (d.node_reasons.size() >= kMaxNodeReasons) break;
      const auto e = r.policy->explain(ctx, r.row);
      d.node_reasons.push_back({nodes.name(r.row), std::string(r.policy->name()), r.policy->reason_code(r.code),
                                e.verdict.empty() ? r.policy->reason(r.code) : e.verdict});
    }
    return d;
  }
  // 3-4. Candidates and their scores.
  for (int b = 0; b < NodeTable::kFillBuckets; ++b)
    rejected_in_bucket[b] = rejected_counts[0][b] + rejected_counts[1][b];
  const std::vector<std::uint32_t> cand = candidates(q, nodes, rows, Rejected{rejected_in_bucket, stamp, generation});
  d.scored = cand.size();
  const size_t s = scorers_.size();
  thread_local std::vector<std::vector<double>> raw, norm;  // per scorer; scratch
  if (raw.size() < s) {
    raw.resize(s);
    norm.resize(s);
  }
  for (size_t p = 0; p < s; ++p) {
    if (std::find_if(active_scorers.begin(), active_scorers.end(),
                     [&](const WeightedPolicy* w) { return w == &scorers_[p]; }) == active_scorers.end()) {
      raw[p].assign(cand.size(), 0.0);
      norm[p].assign(cand.size(), 0.0);
      continue;
    }
    if (std::string note = score_rows(ctx, p, cand, raw[p], norm[p]); !note.empty()) d.notes.push_back(std::move(note));
  }
  // 5. Totals and the deterministic order: by total (in 2^-20 steps), then by a hash of the
  // request's seed and the node's name, then by name. The hash is taken only for the rows
  // that can reach the top K: the K-th best total is found first.
  const size_t n = cand.size();
  thread_local std::vector<double> totals;
  thread_local std::vector<std::int64_t> keys;
  totals.resize(n);
  keys.resize(n);
  for (size_t p = 0; p < s; ++p) {
    const double weight = scorers_[p].weight;
    const double* normalised = norm[p].data();
    if (p == 0) {
      for (size_t i = 0; i < n; ++i) totals[i] = weight * normalised[i];
    } else {
      for (size_t i = 0; i < n; ++i) totals[i] += weight * normalised[i];
    }
  }
  if (s == 0) std::fill(totals.begin(), totals.end(), 0.0);
  for (size_t i = 0; i < n; ++i) keys[i] = total_key(totals[i]);
  const size_t k = std::min(std::max<size_t>(1, options_.top_k), n);
  const std::int64_t cutoff = kth_largest(keys, k);
  struct Ranked {
    std::int64_t total_key;
    std::uint64_t tie_key;
    std::uint32_t index;
    double total;
  };
  std::vector<Ranked> ranked;
  for (size_t i = 0; i < n; ++i) {
    if (keys[i] < cutoff) continue;
    ranked.push_back(
        Ranked{keys[i], splitmix64(q.seed ^ nodes.name_hash(cand[i])), static_cast<std::uint32_t>(i), totals[i]});
  }
  const auto better = [&](const Ranked& a, const Ranked& b) {
    if (a.total_key != b.total_key) return a.total_key > b.total_key;
    if (a.tie_key != b.tie_key) return a.tie_key < b.tie_key;
    return nodes.name(cand[a.index]) < nodes.name(cand[b.index]);
  };
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end(), better);
  // 6. Explain the top K before the commit changes what the words describe.
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
      const bool active = std::find(active_scorers.begin(), active_scorers.end(), &scorers_[p]) != active_scorers.end();
      c.reasons.push_back(active ? scorers_[p].policy->explain(ctx, c.row).score : std::string("does not apply"));
    }
    d.top.push_back(std::move(c));
  }
  d.tie = k > 1 && ranked[0].total_key == ranked[1].total_key;
  d.outcome = Outcome::kPlaced;
  d.placed = true;
  d.row = d.top.front().row;
  d.node = d.top.front().node;
  d.summary = "placed on " + d.node + ": best of " + std::to_string(d.scored) + " scored, " +
              std::to_string(d.feasible) + " of " + std::to_string(d.nodes_total) + " nodes fit" +
              (d.tie ? " (a tie, broken by the request's seed)" : "");
  if (commit) nodes.commit(*d.row, q.resources);
  return d;
}

std::vector<double> Engine::totals(const PlacementQuery& q, const NodeTable& nodes) const {
  const PolicyContext ctx(q, nodes);
  std::vector<double> out(nodes.rows(), std::numeric_limits<double>::quiet_NaN());
  std::vector<std::uint32_t> rows;
  rows.reserve(nodes.rows());
  for (std::uint32_t row = 0; row < nodes.rows(); ++row) {
    if (nodes.state(row) == NodeState::kReady) rows.push_back(row);
  }
  std::vector<std::uint8_t> codes;
  for (const auto& f : filters_) {
    if ((f.policy->applies(ctx) & PlacementPolicy::kFilter) == 0) continue;
    codes.assign(rows.size(), 0);
    if (!run_filter(*f.policy, ctx, rows, codes).empty()) return out;  // cannot decide: nothing is feasible
    size_t kept = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (codes[i] == 0) rows[kept++] = rows[i];
    }
    rows.resize(kept);
  }
  for (const auto row : rows) out[row] = 0;
  std::vector<double> raw, norm;
  for (size_t p = 0; p < scorers_.size(); ++p) {
    if ((scorers_[p].policy->applies(ctx) & PlacementPolicy::kScorer) == 0) continue;
    (void)score_rows(ctx, p, rows, raw, norm);
    for (size_t i = 0; i < rows.size(); ++i) out[rows[i]] += scorers_[p].weight * norm[i];
  }
  return out;
}

std::vector<NodeDetail> Engine::detail(const PlacementQuery& q, const NodeTable& nodes, size_t max_nodes) const {
  const PolicyContext ctx(q, nodes);
  std::vector<NodeDetail> all(nodes.rows());
  std::vector<std::uint32_t> ready;
  for (std::uint32_t row = 0; row < nodes.rows(); ++row) {
    all[row].node = nodes.name(row);
    all[row].ready = nodes.state(row) == NodeState::kReady;
    if (all[row].ready) ready.push_back(row);
  }
  // Every filter over every ready row: an operator sees all the reasons, not just the first.
  std::vector<std::uint8_t> codes;
  std::vector<bool> feasible(nodes.rows(), false);
  for (const auto row : ready) feasible[row] = true;
  for (const auto& f : filters_) {
    if ((f.policy->applies(ctx) & PlacementPolicy::kFilter) == 0) continue;
    codes.assign(ready.size(), 0);
    const std::string err = run_filter(*f.policy, ctx, ready, codes);
    for (size_t i = 0; i < ready.size(); ++i) {
      NodeDetail::Verdict v;
      v.policy = std::string(f.policy->name());
      if (!err.empty()) {
        v.pass = false;
        v.code = "policy_failed";
        v.text = err;
      } else if (codes[i] != 0) {
        v.pass = false;
        v.code = f.policy->reason_code(codes[i]);
      }
      if (err.empty() && ready.size() <= max_nodes) {
        const auto e = f.policy->explain(ctx, ready[i]);
        v.text = e.verdict.empty() ? (v.pass ? "passes" : f.policy->reason(codes[i])) : e.verdict;
      } else if (err.empty()) {
        v.text = v.pass ? "passes" : f.policy->reason(codes[i]);
      }
      if (!v.pass) feasible[ready[i]] = false;
      all[ready[i]].filters.push_back(std::move(v));
    }
  }
  std::vector<std::uint32_t> rows;
  for (const auto row : ready) {
    if (feasible[row]) rows.push_back(row);
    all[row].feasible = feasible[row];
  }
  const size_t s = scorers_.size();
  std::vector<double> raw, norm;
  for (size_t p = 0; p < s; ++p) {
    const bool applies = (scorers_[p].policy->applies(ctx) & PlacementPolicy::kScorer) != 0;
    if (applies) {
      (void)score_rows(ctx, p, rows, raw, norm);
    } else {
      raw.assign(rows.size(), 0.0);
      norm.assign(rows.size(), 0.0);
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      NodeDetail& nd = all[rows[i]];
      nd.raw.push_back(raw[i]);
      nd.normalised.push_back(norm[i]);
      nd.total += scorers_[p].weight * norm[i];
      nd.reasons.push_back(applies && rows.size() <= max_nodes ? scorers_[p].policy->explain(ctx, rows[i]).score
                                                               : std::string());
    }
  }
  // Rank feasible nodes in the engine's order; list ranked nodes first, then the rest.
  std::sort(rows.begin(), rows.end(), [&](std::uint32_t a, std::uint32_t b) {
    const auto ka = total_key(all[a].total), kb = total_key(all[b].total);
    if (ka != kb) return ka > kb;
    const auto ta = splitmix64(q.seed ^ nodes.name_hash(a)), tb = splitmix64(q.seed ^ nodes.name_hash(b));
    if (ta != tb) return ta < tb;
    return nodes.name(a) < nodes.name(b);
  });
  std::vector<NodeDetail> out;
  for (size_t i = 0; i < rows.size() && out.size() < max_nodes; ++i) {
    all[rows[i]].rank = i + 1;
    out.push_back(std::move(all[rows[i]]));
  }
  for (std::uint32_t row = 0; row < nodes.rows() && out.size() < max_nodes; ++row) {
    if (!all[row].feasible) out.push_back(std::move(all[row]));
  }
  return out;
}

}  // namespace novacron::scheduler

#include "policies/affinity/affinity_policy.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "novacron/sdk/json_config.hpp"

namespace novacron::policy::affinity {

namespace {

constexpr sdk::ReasonCode kCodes[] = {
    {"anti_affinity_full", "an anti-affinity group already has its maximum in the node's domain"},
    {"affinity_elsewhere", "an affinity group's members run in other domains"},
    {"scope_label_missing", "no label for the scope of a hard affinity rule"},
    {"max_per_domain", "an affinity group already has max_per_domain members in the node's domain"},
};

constexpr double kNeutral = 0.5;

bool is_node_scope(const sdk::GroupRule& rule) { return rule.scope == "node"; }

bool is_anti(const sdk::GroupRule& rule) { return rule.affinity == sdk::GroupAffinity::kAntiAffinity; }

// Where one group's members run, by domain: the row itself (scope "node") or the value id of
// the row's scope label. Built in O(members).
class GroupDomains {
 public:
  GroupDomains(const sdk::GroupState& group, const sdk::NodeColumns& nodes)
      : group_(&group), node_scope_(is_node_scope(group.rule)) {
    if (!node_scope_) column_ = nodes.label(group.rule.scope);
    const size_t n = std::min(group.rows.size(), group.counts.size());
    std::uint64_t listed = 0;
    for (size_t i = 0; i < n; ++i) {
      listed += group.counts[i];
      const std::uint32_t row = group.rows[i];
      if (row >= nodes.rows) continue;
      if (const auto d = domain(row)) counts_.emplace_back(*d, group.counts[i]);
    }
    // Sorted by domain, one entry per domain: a group has few domains, and every row of the
    // table looks its own up.
    std::sort(counts_.begin(), counts_.end());
    size_t kept = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (kept > 0 && counts_[kept - 1].first == counts_[i].first) {
        counts_[kept - 1].second += counts_[i].second;
      } else {
        counts_[kept++] = counts_[i];
      }
    }
    counts_.resize(kept);
    // The members listed on rows count even if the host's total is short of them.
    members_ = static_cast<std::uint32_t>(std::max<std::uint64_t>(group.members, listed));
  }

  const sdk::GroupRule& rule() const { return group_->rule; }
  std::uint32_t members() const { return members_; }

  // nullopt: the row has no scope label (it belongs to no domain).
  std::optional<std::uint32_t> domain(std::uint32_t row) const {
    if (node_scope_) return row;
    if (column_ == nullptr || column_->value_ids[row] == 0) return std::nullopt;
    return column_->value_ids[row];
  }
  std::uint32_t count(std::uint32_t domain) const {
    const auto it =
        std::lower_bound(counts_.begin(), counts_.end(), std::pair<std::uint32_t, std::uint32_t>(domain, 0));
    return it != counts_.end() && it->first == domain ? it->second : 0;
  }
  bool node_scope() const { return node_scope_; }
  // The scope label's column; null for node scope or when no node has the label.
  const sdk::LabelColumn* column() const { return column_; }
  // (domain, members) of every domain with members, by domain.
  const std::vector<std::pair<std::uint32_t, std::uint32_t>>& counts() const { return counts_; }
  // Members allowed per domain; 0 = unbounded.
  std::uint32_t limit() const {
    if (rule().max_per_domain != 0) return rule().max_per_domain;
    return is_anti(rule()) ? 1 : 0;
  }

 private:
  const sdk::GroupState* group_;
  bool node_scope_;
  const sdk::LabelColumn* column_ = nullptr;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> counts_;  // (domain, members), by domain
  std::uint32_t members_ = 0;
};

std::vector<GroupDomains> domains_of(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, bool hard) {
  std::vector<GroupDomains> out;
  for (const sdk::GroupState& g : query.groups) {
    if (g.rule.hard == hard) out.emplace_back(g, nodes);
  }
  return out;
}

// The verdict for a domain where the group has `n` members.
std::uint8_t verdict_of(const GroupDomains& d, std::uint32_t n) {
  if (is_anti(d.rule())) return n >= d.limit() ? kAntiAffinityFull : kPass;
  if (d.members() == 0) return kPass;  // the first member may go anywhere
  if (n == 0) return kAffinityElsewhere;
  if (d.limit() != 0 && n >= d.limit()) return kMaxPerDomain;
  return kPass;
}

std::uint8_t hard_verdict(const GroupDomains& d, std::uint32_t row) {
  const auto domain = d.domain(row);
  if (!domain) return kScopeLabelMissing;
  return verdict_of(d, d.count(*domain));
}

// One hard group's verdicts resolved once per request, for the filter's loop over every
// row: the verdict of each domain that differs from the verdict of a domain without
// members, which every other row gets. Same verdicts as hard_verdict().
class HardRule {
 public:
  explicit HardRule(const GroupDomains& d)
      : node_scope_(d.node_scope()),
        value_ids_(d.column() != nullptr ? d.column()->value_ids : nullptr),
        others_(verdict_of(d, 0)) {
    for (const auto& [domain, n] : d.counts()) {
      if (const std::uint8_t v = verdict_of(d, n); v != others_) listed_.emplace_back(domain, v);
    }
  }

  // out[i] = verdict(rows[i]), with the short scan unrolled into the loop over rows.
  void verdicts(std::span<const std::uint32_t> rows, std::span<std::uint8_t> out) const {
    if (listed_.size() > kLinear) {
      for (size_t i = 0; i < rows.size(); ++i) out[i] = verdict(rows[i]);
      return;
    }
    if (!node_scope_ && value_ids_ == nullptr) {
      std::fill(out.begin(), out.end(), std::uint8_t{kScopeLabelMissing});
      return;
    }
    const auto* listed = listed_.data();
    const size_t count = listed_.size();
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::uint32_t domain = node_scope_ ? rows[i] : value_ids_[rows[i]];
      std::uint8_t v = others_;
      for (size_t j = 0; j < count; ++j) v = listed[j].first == domain ? listed[j].second : v;
      out[i] = !node_scope_ && domain == 0 ? std::uint8_t{kScopeLabelMissing} : v;
    }
  }

  std::uint8_t verdict(std::uint32_t row) const {
    std::uint32_t domain = row;
    if (!node_scope_) {
      if (value_ids_ == nullptr || value_ids_[row] == 0) return kScopeLabelMissing;
      domain = value_ids_[row];
    }
    if (listed_.size() <= kLinear) {
      for (const auto& [d, v] : listed_) {
        if (d == domain) return v;
      }
      return others_;
    }
    const auto it = std::lower_bound(listed_.begin(), listed_.end(), std::pair<std::uint32_t, std::uint8_t>(domain, 0));
    return it != listed_.end() && it->first == domain ? it->second : others_;
  }

 private:
  static constexpr size_t kLinear = 16;  // a scan beats a binary search up to here
  bool node_scope_;
  const std::uint32_t* value_ids_;
  std::uint8_t others_;
  std::vector<std::pair<std::uint32_t, std::uint8_t>> listed_;  // by domain
};

double soft_score(const GroupDomains& d, std::uint32_t row) {
  const auto domain = d.domain(row);
  if (!domain) return kNeutral;
  const auto n = static_cast<double>(d.count(*domain));
  const std::uint32_t m = d.members();
  double s = 0;
  if (is_anti(d.rule())) {
    s = 1.0 - n / static_cast<double>(std::max<std::uint32_t>(m, 1));
  } else {
    s = m == 0 ? kNeutral : n / static_cast<double>(m);
  }
  return std::clamp(s, 0.0, 1.0);
}

double mean_score(const std::vector<GroupDomains>& soft, std::uint32_t row) {
  if (soft.empty()) return kNeutral;
  double sum = 0;
  for (const auto& d : soft) sum += soft_score(d, row);
  return sum / static_cast<double>(soft.size());
}

// --- Words ---------------------------------------------------------------------------------

std::string describe(const sdk::GroupRule& rule) {
  std::string s = is_anti(rule) ? "anti-affinity" : "affinity";
  s += " group ";
  s += rule.name;
  s += rule.hard ? " (hard, " : " (soft, ";
  s += rule.scope;
  if (rule.max_per_domain != 0) s += ", max " + std::to_string(rule.max_per_domain);
  s += ")";
  return s;
}

std::string members_text(std::uint32_t n) { return std::to_string(n) + (n == 1 ? " member" : " members"); }

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// "node-b" (scope node) or "rack r1 (node-b)".
std::string domain_text(const GroupDomains& d, const sdk::NodeColumns& nodes, std::uint32_t row) {
  std::string name(nodes.names[row]);
  if (is_node_scope(d.rule())) return name;
  std::string s(d.rule().scope);
  s += " ";
  s += nodes.label_of(row, d.rule().scope);
  s += " (" + name + ")";
  return s;
}

std::string missing_label_text(const GroupDomains& d, const sdk::NodeColumns& nodes, std::uint32_t row) {
  return std::string(nodes.names[row]) + " has no label " + std::string(d.rule().scope);
}

std::string hard_text(const GroupDomains& d, const sdk::NodeColumns& nodes, std::uint32_t row, std::uint8_t code) {
  const std::string rule = describe(d.rule());
  if (code == kScopeLabelMissing) return missing_label_text(d, nodes, row) + ", required by " + rule;
  const std::uint32_t n = d.count(*d.domain(row));
  const std::string where = domain_text(d, nodes, row);
  switch (code) {
    case kAntiAffinityFull:
    case kMaxPerDomain:
      return rule + ": " + where + " already runs " + members_text(n) + " (max " + std::to_string(d.limit()) + ")";
    case kAffinityElsewhere:
      return rule + ": " + where + " runs none of its " + members_text(d.members());
    default:
      break;
  }
  if (is_anti(d.rule()))
    return rule + ": " + where + " runs " + members_text(n) + " (max " + std::to_string(d.limit()) + ")";
  if (d.members() == 0) return rule + ": no members yet, " + where + " may hold the first";
  return rule + ": " + where + " runs " + std::to_string(n) + " of its " + members_text(d.members());
}

std::string soft_text(const GroupDomains& d, const sdk::NodeColumns& nodes, std::uint32_t row) {
  const std::string rule = describe(d.rule());
  const double s = soft_score(d, row);
  const auto domain = d.domain(row);
  if (!domain) return missing_label_text(d, nodes, row) + ": neutral (" + fixed2(s) + ") for " + rule;
  if (!is_anti(d.rule()) && d.members() == 0) return rule + ": no members yet, neutral (" + fixed2(s) + ")";
  return rule + ": " + domain_text(d, nodes, row) + " runs " + std::to_string(d.count(*domain)) + " of its " +
         members_text(d.members()) + ", score " + fixed2(s);
}

void append(std::string& out, const std::string& part) {
  if (!out.empty()) out += "; ";
  out += part;
}

}  // namespace

std::span<const sdk::ReasonCode> AffinityPolicy::reason_codes() const noexcept { return kCodes; }

std::uint32_t AffinityPolicy::applies(const sdk::PlacementQuery& query) noexcept {
  std::uint32_t r = 0;
  for (const sdk::GroupState& g : query.groups) r |= g.rule.hard ? sdk::kPolicyFilters : sdk::kPolicyScores;
  return r;
}

sdk::Status AffinityPolicy::on_init(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  cfg.reject_unknown_keys();
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  return sdk::Status::ok();
}

sdk::Status AffinityPolicy::on_check_request(const sdk::PlacementQuery& query) {
  for (size_t i = 0; i < query.groups.size(); ++i) {
    const sdk::GroupState& g = query.groups[i];
    const sdk::GroupRule& r = g.rule;
    const std::string path = "/placement/groups/" + std::to_string(i);
    if (r.name.empty()) return sdk::invalid_argument(path + "/name: a group needs a name");
    if (r.affinity != sdk::GroupAffinity::kAffinity && r.affinity != sdk::GroupAffinity::kAntiAffinity) {
      return sdk::invalid_argument(path + "/affinity: expected \"affinity\" or \"anti-affinity\"");
    }
    if (r.scope.empty()) {
      return sdk::invalid_argument(path + "/scope: expected \"node\" or a label key (rack, zone, ...), got \"\"");
    }
    if (g.rows.size() != g.counts.size()) {
      return sdk::invalid_argument(path + ": " + std::to_string(g.rows.size()) + " member rows but " +
                                   std::to_string(g.counts.size()) + " counts");
    }
    for (size_t j = 0; j < i; ++j) {
      const sdk::GroupRule& o = query.groups[j].rule;
      if (o.name != r.name) continue;
      if (o.affinity != r.affinity || o.hard != r.hard || o.scope != r.scope || o.max_per_domain != r.max_per_domain) {
        return sdk::invalid_argument(path + ": group " + std::string(r.name) +
                                     " appears twice with different rules: " + describe(o) + " at /placement/groups/" +
                                     std::to_string(j) + ", " + describe(r) + " here");
      }
    }
  }
  return sdk::Status::ok();
}

sdk::Status AffinityPolicy::on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                           std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) {
  const std::vector<GroupDomains> hard = domains_of(query, nodes, /*hard=*/true);
  std::vector<HardRule> rules;
  rules.reserve(hard.size());
  for (const GroupDomains& d : hard) rules.emplace_back(d);
  if (rules.size() == 1) {  // the usual request: one group
    rules[0].verdicts(rows, reject);
    return sdk::Status::ok();
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    std::uint8_t code = kPass;
    for (size_t g = 0; g < rules.size() && code == kPass; ++g) code = rules[g].verdict(rows[i]);
    reject[i] = code;
  }
  return sdk::Status::ok();
}

sdk::Status AffinityPolicy::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                          std::span<const std::uint32_t> rows, std::span<double> out) {
  const std::vector<GroupDomains> soft = domains_of(query, nodes, /*hard=*/false);
  for (size_t i = 0; i < rows.size(); ++i) out[i] = mean_score(soft, rows[i]);
  return sdk::Status::ok();
}

sdk::Status AffinityPolicy::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                           std::uint32_t row, sdk::FilterVerdict& verdict, sdk::NodeScore& score) {
  if (row >= nodes.rows) return sdk::invalid_argument("row " + std::to_string(row) + " is not in the node table");
  std::string passed;
  std::string failed;
  for (const GroupDomains& d : domains_of(query, nodes, /*hard=*/true)) {
    const std::uint8_t code = hard_verdict(d, row);
    append(code == kPass ? passed : failed, hard_text(d, nodes, row, code));
  }
  verdict.pass = failed.empty();
  verdict.reason = verdict.pass ? passed : failed;

  const std::vector<GroupDomains> soft = domains_of(query, nodes, /*hard=*/false);
  score.score = mean_score(soft, row);
  score.reason.clear();
  for (const GroupDomains& d : soft) append(score.reason, soft_text(d, nodes, row));
  if (soft.size() > 1) append(score.reason, "mean " + fixed2(score.score));
  return sdk::Status::ok();
}

}  // namespace novacron::policy::affinity

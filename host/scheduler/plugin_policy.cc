#include "host/scheduler/plugin_policy.h"

#include <algorithm>
#include <vector>

namespace novacron::scheduler {

namespace {

std::string error_of(const sdk::Status& s) { return s.is_ok() ? std::string() : std::string(s.message()); }

}  // namespace

PluginPolicy::PluginPolicy(std::string name, sdk::SchedulingPolicy* plugin, std::uint32_t interface_version)
    : name_(std::move(name)), plugin_(plugin), v2_(interface_version >= 2), roles_(0) {
  const std::uint32_t r = plugin_->roles();
  if ((r & sdk::kPolicyFilters) != 0) roles_ |= kFilter;
  if ((r & sdk::kPolicyScores) != 0) roles_ |= kScorer;
  if (v2_) {
    scale_ = plugin_->score_scale() == sdk::ScoreScale::kUnit ? ScoreScale::kUnit : ScoreScale::kRelative;
    codes_ = plugin_->reason_codes();
  }
}

std::uint32_t PluginPolicy::applies(const PolicyContext& ctx) const {
  if (!v2_) return roles_;
  const std::uint32_t r = plugin_->applies(ctx.sdk_query());
  return ((r & sdk::kPolicyFilters) != 0 ? (roles_ & kFilter) : 0) |
         ((r & sdk::kPolicyScores) != 0 ? (roles_ & kScorer) : 0);
}

std::string PluginPolicy::check(const PolicyContext& ctx) const {
  return v2_ ? error_of(plugin_->check_request(ctx.sdk_query())) : std::string();
}

std::string PluginPolicy::filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                                 std::span<std::uint8_t> reject) const {
  if (v2_) {
    // Codes past max_code() are refused by the engine, which looks at every rejection anyway.
    return error_of(plugin_->filter_rows(ctx.sdk_query(), ctx.columns, rows, reject));
  }
  std::vector<sdk::NodeCandidate> records;
  records.reserve(rows.size());
  for (const auto row : rows) records.push_back(sdk::candidate_of(ctx.columns, row));
  std::vector<sdk::FilterVerdict> verdicts(rows.size());
  if (std::string err = error_of(plugin_->filter(*ctx.sdk_query().request, records, verdicts)); !err.empty()) {
    return err;
  }
  for (size_t i = 0; i < rows.size(); ++i) reject[i] = verdicts[i].pass ? 0 : 1;
  return {};
}

std::string PluginPolicy::reason(std::uint8_t code) const {
  if (code >= 1 && code <= codes_.size()) return std::string(codes_[code - 1].text);
  return "rejected by " + name_;
}

std::uint8_t PluginPolicy::max_code() const {
  return v2_ ? static_cast<std::uint8_t>(std::min<size_t>(codes_.size(), 255)) : std::uint8_t{1};
}

std::string PluginPolicy::reason_code(std::uint8_t code) const {
  if (code >= 1 && code <= codes_.size()) return std::string(codes_[code - 1].code);
  return "rejected";
}

std::string PluginPolicy::score(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                                std::span<double> out) const {
  if (v2_) return error_of(plugin_->score_rows(ctx.sdk_query(), ctx.columns, rows, out));
  std::vector<sdk::NodeCandidate> records;
  records.reserve(rows.size());
  for (const auto row : rows) records.push_back(sdk::candidate_of(ctx.columns, row));
  std::vector<sdk::NodeScore> scores(rows.size());
  if (std::string err = error_of(plugin_->score(*ctx.sdk_query().request, records, scores)); !err.empty()) return err;
  for (size_t i = 0; i < rows.size(); ++i) out[i] = scores[i].score;
  return {};
}

PlacementPolicy::Explanation PluginPolicy::explain(const PolicyContext& ctx, std::uint32_t row) const {
  sdk::FilterVerdict verdict;
  sdk::NodeScore score;
  if (v2_) {
    if (!plugin_->explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score).is_ok()) return {};
  } else {
    const sdk::NodeCandidate record = sdk::candidate_of(ctx.columns, row);
    if ((roles_ & kFilter) != 0) {
      (void)plugin_->filter(*ctx.sdk_query().request, std::span<const sdk::NodeCandidate>(&record, 1),
                            std::span<sdk::FilterVerdict>(&verdict, 1));
    }
    if ((roles_ & kScorer) != 0) {
      (void)plugin_->score(*ctx.sdk_query().request, std::span<const sdk::NodeCandidate>(&record, 1),
                           std::span<sdk::NodeScore>(&score, 1));
    }
  }
  return {verdict.pass, std::move(verdict.reason), std::move(score.reason)};
}

}  // namespace novacron::scheduler

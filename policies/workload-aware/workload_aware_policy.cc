#include "policies/workload-aware/workload_aware_policy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

#include "novacron/sdk/json_config.hpp"
#include "policies/common/columns.hpp"

namespace novacron::policy::workload_aware {

namespace {

using sdk::WorkloadClass;

constexpr double kNeutral = 0.5;
constexpr std::uint32_t kFitResources = 2;  // cpu and memory

size_t idx(WorkloadClass c) { return static_cast<size_t>(c); }

// The usage columns came with SDK 1.4: a host that filled an older NodeColumns has none.
bool has_usage_columns(const sdk::NodeColumns& nodes) {
  return nodes.struct_size >= offsetof(sdk::NodeColumns, class_counts) + sizeof(nodes.class_counts);
}

const float* prediction_column(const sdk::NodeColumns& nodes, bool p95, std::uint32_t resource) {
  if (!has_usage_columns(nodes)) return nullptr;
  return p95 ? nodes.predicted_p95[resource] : nodes.predicted_mean[resource];
}

const std::uint16_t* class_row(const sdk::NodeColumns& nodes, std::uint32_t row) {
  if (!has_usage_columns(nodes) || nodes.class_counts == nullptr) return nullptr;
  return nodes.class_counts + static_cast<size_t>(row) * sdk::kWorkloadClassCount;
}

// Whole percent without clamping (a prediction may exceed the capacity).
std::string percent_text(double fraction) {
  return std::to_string(static_cast<long long>(std::llround(fraction * 100.0))) + "%";
}

}  // namespace

// --- Complements ---------------------------------------------------------------------------

ComplementMatrix default_complements() {
  ComplementMatrix m{};
  for (auto& row : m) row.fill(kNeutral);
  for (const WorkloadClass c : {WorkloadClass::kBursty, WorkloadClass::kCpuBound, WorkloadClass::kMemoryBound,
                                WorkloadClass::kIoBound, WorkloadClass::kMixed}) {
    m[idx(c)][idx(c)] = 0.2;  // the same class competes for the same resource
  }
  m[idx(WorkloadClass::kIdle)][idx(WorkloadClass::kIdle)] = 0.6;
  const auto both = [&m](WorkloadClass a, WorkloadClass b, double v) { m[idx(a)][idx(b)] = m[idx(b)][idx(a)] = v; };
  both(WorkloadClass::kCpuBound, WorkloadClass::kMemoryBound, 1.0);
  both(WorkloadClass::kIoBound, WorkloadClass::kCpuBound, 0.8);
  both(WorkloadClass::kIoBound, WorkloadClass::kMemoryBound, 0.8);
  return m;
}

bool workload_class_of(std::string_view name, WorkloadClass& out) {
  for (size_t c = 0; c < kClasses; ++c) {
    const auto wc = static_cast<WorkloadClass>(c);
    if (name == sdk::workload_class_name(wc)) {
      out = wc;
      return true;
    }
  }
  return false;
}

// --- Config --------------------------------------------------------------------------------

namespace {

constexpr std::array<std::string_view, 5> kKeys = {"complement_weight", "target_utilisation", "predict",
                                                   "unknown_vm_utilisation", "complement"};
constexpr const char* kClassList = "idle, bursty, cpu-bound, memory-bound, io-bound, mixed, unknown";

void parse_complements(const nlohmann::json& v, ComplementMatrix& m, sdk::ConfigReader& cfg) {
  if (!v.is_object()) {
    cfg.fail("/complement",
             std::string(R"(expected an object of objects, e.g. {"cpu-bound": {"memory-bound": 1.0}}, got )") +
                 v.type_name());
    return;
  }
  for (const auto& [request, row] : v.items()) {
    const std::string path = "/complement/" + request;
    WorkloadClass rc{};
    if (!workload_class_of(request, rc)) {
      cfg.fail(path, std::string("unknown workload class (") + kClassList + ")");
      continue;
    }
    if (!row.is_object()) {
      cfg.fail(path, std::string("expected an object of workload class: value, got ") + row.type_name());
      continue;
    }
    for (const auto& [vm, value] : row.items()) {
      WorkloadClass vc{};
      if (!workload_class_of(vm, vc)) {
        cfg.fail(path + "/" + vm, std::string("unknown workload class (") + kClassList + ")");
      } else if (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 1) {
        cfg.fail(path + "/" + vm, "expected a number between 0 and 1, got " + value.dump());
      } else {
        m[idx(rc)][idx(vc)] = value.get<double>();
      }
    }
  }
}

}  // namespace

sdk::Result<WorkloadAwareConfig> WorkloadAwareConfig::parse(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  WorkloadAwareConfig c;
  c.complement_weight = cfg.number("complement_weight", c.complement_weight, 0, 1);
  c.target_utilisation = cfg.number("target_utilisation", c.target_utilisation, 0.05, 0.99);
  c.use_p95 = cfg.string("predict", "p95", {"p95", "ewma"}) == "p95";
  c.unknown_vm_utilisation = cfg.number("unknown_vm_utilisation", c.unknown_vm_utilisation, 0, 1);
  // "complement" is an object of objects, read here (ConfigReader reads scalars).
  const auto& root = cfg.root();
  if (const auto it = root.find("complement"); it != root.end()) parse_complements(*it, c.complements, cfg);
  for (const auto& [key, value] : root.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) cfg.fail("/" + key, "unknown key");
  }
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  return c;
}

// --- Policy --------------------------------------------------------------------------------

sdk::Status WorkloadAwarePolicy::configure(std::string_view config_json) {
  auto parsed = WorkloadAwareConfig::parse(config_json);
  if (!parsed.is_ok()) return parsed.status();
  config_ = std::move(parsed).value();
  return sdk::Status::ok();
}

RowTerms WorkloadAwarePolicy::terms(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                    std::uint32_t row) const {
  RowTerms t;
  const double share = config_.unknown_vm_utilisation;
  double worst = 0;
  for (std::uint32_t r = 0; r < kFitResources; ++r) {
    const std::int64_t usable = policies::usable(nodes, row, r);
    if (usable <= 0) {
      t.usable = false;
      continue;
    }
    const float* column = prediction_column(nodes, config_.use_p95, r);
    const float node_prediction = column != nullptr ? column[row] : __builtin_nanf("");
    double pred = 0;
    if (std::isfinite(node_prediction)) {
      pred = std::max(0.0, static_cast<double>(node_prediction));
    } else {
      t.node_known[r] = false;
      pred = static_cast<double>(nodes.allocated[r][row]) * share;
    }
    double req = 0;
    if (std::isfinite(query.predicted[r])) {
      req = std::max(0.0, static_cast<double>(query.predicted[r]));
    } else {
      t.vm_known = false;
      req = static_cast<double>(query.resources[r]) * share;
    }
    t.predicted_after[r] = (pred + req) / static_cast<double>(usable);
    worst = std::max(worst, t.predicted_after[r]);
  }
  const double target = config_.target_utilisation;
  t.fit = std::clamp(1.0 - std::max(0.0, worst - target) / (1.0 - target), 0.0, 1.0);

  if (const std::uint16_t* counts = class_row(nodes, row); counts != nullptr) {
    const auto& m = config_.complements[idx(query.workload_class)];
    double sum = 0;
    for (size_t c = 0; c < kClasses; ++c) {
      t.vms += counts[c];
      sum += m[c] * counts[c];
    }
    if (t.vms > 0) t.complement = sum / t.vms;
  }
  if (!t.usable || worst > 1.0) {
    t.score = 0;  // over capacity after placement: the complement does not rescue it
  } else {
    const double a = config_.complement_weight;
    t.score = std::clamp((1.0 - a) * t.fit + a * t.complement, 0.0, 1.0);
  }
  return t;
}

std::string WorkloadAwarePolicy::reason_of(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                           std::uint32_t row, const RowTerms& t) const {
  if (!t.usable) return "no usable capacity (cpu or memory: capacity - reserved <= 0), score 0.00";
  const std::string pct = percent_text(config_.unknown_vm_utilisation);
  std::string s = "predicted after placement: cpu " + percent_text(t.predicted_after[0]) + ", memory " +
                  percent_text(t.predicted_after[1]) + " (" + (config_.use_p95 ? "p95" : "ewma") + ")";
  if (!t.node_known[0] || !t.node_known[1]) {
    s += std::string(" (node usage unknown") + (t.node_known[0] || t.node_known[1] ? " for " : "") +
         (t.node_known[0] ? "memory" : (t.node_known[1] ? "cpu" : "")) + ": " + pct + " of allocated assumed)";
  }
  if (!t.vm_known) s += " (no history for this VM: " + pct + " of requested assumed)";
  if (std::max(t.predicted_after[0], t.predicted_after[1]) > 1.0) {
    return s + "; predicted over capacity, score 0.00";
  }
  if (t.fit < 1.0) {
    s += "; over the " + percent_text(config_.target_utilisation) + " target: fit " + policies::format_number(t.fit, 2);
  }
  s += "; ";
  const std::uint16_t* counts = class_row(nodes, row);
  if (t.vms == 0 || counts == nullptr) {
    s += "no VMs to complement (0.50)";
  } else {
    size_t top = 0;
    for (size_t c = 1; c < kClasses; ++c) {
      if (counts[c] > counts[top]) top = c;
    }
    const std::string cls = sdk::workload_class_name(static_cast<WorkloadClass>(top));
    s += t.complement > kNeutral ? "complements " : (t.complement < kNeutral ? "competes with " : "next to ");
    s += std::to_string(counts[top]) + " " + cls + (counts[top] == 1 ? " VM" : " VMs");
    if (counts[top] != t.vms) s += " and " + std::to_string(t.vms - counts[top]) + " more";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.2f", t.complement);
    s += std::string(" (") + buf + ")";
    if (query.workload_class == WorkloadClass::kUnknown) s += " (this VM's class is unknown)";
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", t.score);
  return s + ", score " + buf;
}

sdk::Status WorkloadAwarePolicy::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                               std::span<const std::uint32_t> rows, std::span<double> out) {
  for (size_t i = 0; i < rows.size(); ++i) out[i] = terms(query, nodes, rows[i]).score;
  return sdk::Status::ok();
}

sdk::Status WorkloadAwarePolicy::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                                std::uint32_t row, sdk::FilterVerdict& verdict, sdk::NodeScore& score) {
  if (row >= nodes.rows) return sdk::invalid_argument("row " + std::to_string(row) + " is not in the node table");
  const RowTerms t = terms(query, nodes, row);
  verdict.pass = true;
  score.score = t.score;
  score.reason = reason_of(query, nodes, row, t);
  return sdk::Status::ok();
}

}  // namespace novacron::policy::workload_aware

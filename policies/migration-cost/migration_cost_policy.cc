#include "policies/migration-cost/migration_cost_policy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <utility>

#include "novacron/sdk/json_config.hpp"
#include "policies/common/columns.hpp"

namespace novacron::policy::migration_cost {

namespace {

using nlohmann::json;
using topology::Relation;

constexpr double kMib = 1048576.0;
constexpr double kRiskCentre = 0.9;  // u_p95_after where the eviction risk is 50 %
constexpr double kRiskWidth = 0.05;
constexpr std::uint32_t kFitResources = 2;  // cpu and memory
constexpr std::array<std::string_view, 12> kKeys = {
    "max_downtime_ms",        "max_rounds", "switchover_ms", "efficiency", "dirty_rate_mib_s", "time_cap_s",
    "hard_downtime_limit_ms", "copy_disk",  "levels",        "latency_ms", "bandwidth_mbps",   "links"};
constexpr std::array<std::string_view, 4> kTopologyKeys = {"levels", "latency_ms", "bandwidth_mbps", "links"};
constexpr const char* kClassList = "idle, bursty, cpu-bound, memory-bound, io-bound, mixed, unknown";

constexpr sdk::ReasonCode kReasons[] = {{"downtime", "estimated downtime over the hard limit"}};
constexpr std::uint8_t kRejectDowntime = 1;

bool workload_class_of(std::string_view name, WorkloadClass& out) {
  for (size_t c = 0; c < kWorkloadClasses; ++c) {
    const auto wc = static_cast<WorkloadClass>(c);
    if (name == workload_class_name(wc)) {
      out = wc;
      return true;
    }
  }
  return false;
}

// The calibration's link key of a relation (a std::string, so looking it up does not allocate).
const std::string& relation_key(size_t relation) {
  static const std::array<std::string, topology::kRelations> kNames = {
      topology::relation_name(Relation::kSameNode), topology::relation_name(Relation::kSameRack),
      topology::relation_name(Relation::kSameDatacenter), topology::relation_name(Relation::kBetweenDatacenters)};
  return kNames[relation];
}

std::string relation_text(Relation r) {
  std::string s = topology::relation_name(r);
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

// The usage columns came with SDK 1.4: a host that filled an older NodeColumns has none.
bool has_usage_columns(const sdk::NodeColumns& nodes) {
  return nodes.struct_size >= offsetof(sdk::NodeColumns, class_counts) + sizeof(nodes.class_counts);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent_text(double fraction) {
  return std::to_string(static_cast<long long>(std::llround(fraction * 100.0))) + "%";
}

// 0.4 s, 14 s, 9.5 min, 2.1 h.
std::string duration_text(double seconds) {
  if (!std::isfinite(seconds)) return "forever (no bandwidth)";
  if (seconds < 10) return policies::format_number(seconds, 1) + " s";
  if (seconds < 120) return std::to_string(std::llround(seconds)) + " s";
  if (seconds < 7200) return policies::format_number(seconds / 60.0, 1) + " min";
  return policies::format_number(seconds / 3600.0, 1) + " h";
}

// 120 ms, 1.8 s.
std::string downtime_text(double ms) {
  if (!std::isfinite(ms)) return "unbounded";
  if (ms < 1000) return std::to_string(std::llround(ms)) + " ms";
  return policies::format_number(ms / 1000.0, 2) + " s";
}

void parse_dirty_rates(const json& v, MigrationCostConfig& c, sdk::ConfigReader& cfg) {
  if (!v.is_object()) {
    cfg.fail("/dirty_rate_mib_s",
             std::string(R"(expected an object of workload class: MiB/s, e.g. {"memory-bound": 300}, got )") +
                 v.type_name());
    return;
  }
  for (const auto& [name, value] : v.items()) {
    const std::string path = "/dirty_rate_mib_s/" + name;
    WorkloadClass wc{};
    if (!workload_class_of(name, wc)) {
      cfg.fail(path, std::string("unknown workload class (") + kClassList + ")");
    } else if (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 1e6) {
      cfg.fail(path, "expected a number between 0 and 1000000 (MiB/s), got " + value.dump());
    } else {
      c.dirty_rate[static_cast<size_t>(wc)] = value.get<double>();
    }
  }
}

}  // namespace

// --- Config --------------------------------------------------------------------------------

sdk::Result<MigrationCostConfig> MigrationCostConfig::parse(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  MigrationCostConfig c;
  c.model.max_downtime_ms = cfg.number("max_downtime_ms", c.model.max_downtime_ms, 1, 1e6);
  c.model.max_rounds = static_cast<int>(cfg.integer("max_rounds", c.model.max_rounds, 1, 1000));
  c.model.switchover_ms = cfg.number("switchover_ms", c.model.switchover_ms, 0, 1e5);
  c.model.efficiency = cfg.number("efficiency", c.model.efficiency, 0.05, 1);
  c.time_cap_s = cfg.number("time_cap_s", c.time_cap_s, 1, 1e6);
  c.hard_downtime_limit_ms = cfg.number("hard_downtime_limit_ms", c.hard_downtime_limit_ms, 0, 1e7);
  c.copy_disk = cfg.boolean("copy_disk", c.copy_disk);
  const json& root = cfg.root();
  if (const auto it = root.find("dirty_rate_mib_s"); it != root.end()) parse_dirty_rates(*it, c, cfg);
  for (const auto& [key, value] : root.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) cfg.fail("/" + key, "unknown key");
  }
  // The topology keys mean what they mean to the topology policy: its parser reads them.
  json topology = json::object();
  for (const std::string_view key : kTopologyKeys) {
    if (const auto it = root.find(key); it != root.end()) topology[std::string(key)] = *it;
  }
  std::string errors = cfg.error();
  auto parsed = topology::TopologyConfig::parse(topology.dump());
  if (parsed.is_ok()) {
    c.topology = std::move(parsed).value();
  } else {
    errors += (errors.empty() ? "" : "; ") + std::string(parsed.status().message());
  }
  if (!errors.empty()) return sdk::invalid_argument(errors);
  return c;
}

// --- Layout (for observations) -------------------------------------------------------------

struct MigrationCostPolicy::Layout {
  std::uint64_t epoch = 0;
  std::vector<std::string> names;
  std::unordered_map<std::string_view, std::uint32_t> rows;  // over names
  std::vector<std::string> label_values;
  std::vector<std::string> keys;  // the topology levels the nodes have, sorted
  std::vector<std::vector<std::uint32_t>> ids;
  std::vector<sdk::LabelColumn> columns;
  sdk::NodeColumns view;  // rows, label_values and labels: what TopologyModel reads

  Layout(const sdk::NodeColumns& nodes, const topology::TopologyConfig& config) : epoch(nodes.layout_epoch) {
    names.reserve(nodes.rows);
    for (std::uint32_t r = 0; r < nodes.rows; ++r) names.emplace_back(nodes.names[r]);
    rows.reserve(nodes.rows);
    for (std::uint32_t r = 0; r < nodes.rows; ++r) rows.emplace(names[r], r);
    label_values.assign(nodes.label_values.begin(), nodes.label_values.end());
    std::vector<std::string> present;
    for (const std::string& key : config.levels) {
      if (nodes.label(key) != nullptr) present.push_back(key);
    }
    std::sort(present.begin(), present.end());
    keys = std::move(present);
    for (const std::string& key : keys) {
      const std::uint32_t* v = nodes.label(key)->value_ids;
      ids.emplace_back(v, v + nodes.rows);
    }
    for (size_t i = 0; i < keys.size(); ++i) columns.push_back({keys[i], ids[i].data()});
    view.rows = nodes.rows;
    view.label_values = label_values;
    view.labels = columns;
  }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;

  const std::uint32_t* row_of(std::string_view name) const {
    const auto it = rows.find(name);
    return it == rows.end() ? nullptr : &it->second;
  }
};

// --- Policy --------------------------------------------------------------------------------

std::span<const sdk::ReasonCode> MigrationCostPolicy::reason_codes() const noexcept { return kReasons; }

std::uint32_t MigrationCostPolicy::applies(const sdk::PlacementQuery& query) noexcept {
  std::uint32_t r = sdk::kPolicyScores;
  if (query.source_row >= 0 && config_.hard_downtime_limit_ms > 0) r |= sdk::kPolicyFilters;
  return r;
}

sdk::Status MigrationCostPolicy::on_init(std::string_view config_json) {
  auto parsed = MigrationCostConfig::parse(config_json);
  if (!parsed.is_ok()) return parsed.status();
  config_ = std::move(parsed).value();
  links_.clear();
  {
    const std::lock_guard<std::mutex> lock(mu_);
    calibration_ = Calibration(config_.model.efficiency);
    for (size_t c = 0; c < kWorkloadClasses; ++c) {
      if (config_.dirty_rate[c] >= 0) calibration_.set_dirty_rate(static_cast<WorkloadClass>(c), config_.dirty_rate[c]);
    }
    observations_ = 0;
  }
  load_calibration();
  return sdk::Status::ok();
}

CalibratedParams MigrationCostPolicy::calibrated() const {
  CalibratedParams p;
  const std::lock_guard<std::mutex> lock(mu_);
  for (size_t c = 0; c < kWorkloadClasses; ++c)
    p.dirty_rate[c] = calibration_.dirty_rate(static_cast<WorkloadClass>(c));
  for (size_t r = 0; r < topology::kRelations; ++r) p.efficiency[r] = calibration_.efficiency(relation_key(r));
  return p;
}

std::uint64_t MigrationCostPolicy::observations() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return observations_;
}

std::string MigrationCostPolicy::calibration_json() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return calibration_json_locked();
}

std::string MigrationCostPolicy::calibration_json_locked() const {
  json dirty = json::object();
  for (size_t c = 0; c < kWorkloadClasses; ++c) {
    const auto wc = static_cast<WorkloadClass>(c);
    dirty[workload_class_name(wc)] = calibration_.dirty_rate(wc);
  }
  json efficiency = json::object();
  for (const auto& [link, share] : calibration_.links()) efficiency[link] = share;
  return json{{"version", 1},
              {"observations", observations_},
              {"dirty_rate_mib_s", std::move(dirty)},
              {"efficiency", std::move(efficiency)}}
      .dump();
}

void MigrationCostPolicy::load_calibration() {
  auto stored = host().kv_get(kCalibrationKey);
  if (!stored.is_ok()) {
    host().log(sdk::LogLevel::kWarn, "could not read the stored migration calibration; starting from the config",
               {{"key", std::string(kCalibrationKey)}, {"error", std::string(stored.status().message())}});
    return;
  }
  const std::optional<std::string>& text = stored.value();
  if (!text.has_value()) return;
  const json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) {
    host().log(sdk::LogLevel::kWarn, "ignoring a stored migration calibration that is not valid",
               {{"key", std::string(kCalibrationKey)}});
    return;
  }
  const std::lock_guard<std::mutex> lock(mu_);
  if (const auto it = j.find("dirty_rate_mib_s"); it != j.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) {
      WorkloadClass wc{};
      if (workload_class_of(name, wc) && value.is_number() && std::isfinite(value.get<double>()) &&
          value.get<double>() >= 0) {
        calibration_.set_dirty_rate(wc, value.get<double>());
      }
    }
  }
  if (const auto it = j.find("efficiency"); it != j.end() && it->is_object()) {
    for (const auto& [link, value] : it->items()) {
      if (value.is_number() && value.get<double>() > 0 && value.get<double>() <= 1) {
        calibration_.set_efficiency(link, value.get<double>());
      }
    }
  }
  if (const auto it = j.find("observations"); it != j.end() && it->is_number_unsigned()) {
    observations_ = it->get<std::uint64_t>();
  }
  host().log(sdk::LogLevel::kInfo, "loaded the stored migration calibration",
             {{"observations", std::to_string(observations_)}});
}

void MigrationCostPolicy::store_calibration() {
  const std::lock_guard<std::mutex> store(store_mu_);
  const std::string text = calibration_json();
  const sdk::Status s = host().kv_put(kCalibrationKey, text);
  if (!s.is_ok()) {
    host().log(sdk::LogLevel::kWarn, "could not store the migration calibration; it is kept in memory",
               {{"key", std::string(kCalibrationKey)}, {"error", std::string(s.message())}});
  }
}

void MigrationCostPolicy::remember_layout(const sdk::NodeColumns& nodes) {
  {
    const std::lock_guard<std::mutex> lock(layout_mu_);
    if (layout_ != nullptr && layout_->epoch == nodes.layout_epoch) return;
  }
  auto fresh = std::make_shared<const Layout>(nodes, config_.topology);
  const std::lock_guard<std::mutex> lock(layout_mu_);
  layout_ = std::move(fresh);
}

void MigrationCostPolicy::on_observe_migration(const sdk::MigrationObservation& o) {
  Observation seen;
  if (o.kind == "migration") {
    seen.kind = Observation::Kind::kMigration;
  } else if (o.kind == "transfer") {
    seen.kind = Observation::Kind::kTransfer;
  } else {
    host().log(sdk::LogLevel::kDebug, "ignoring an observation of an unknown kind", {{"kind", std::string(o.kind)}});
    return;
  }
  std::shared_ptr<const Layout> layout;
  {
    const std::lock_guard<std::mutex> lock(layout_mu_);
    layout = layout_;
  }
  const std::uint32_t* source = layout != nullptr ? layout->row_of(o.source) : nullptr;
  const std::uint32_t* target = layout != nullptr ? layout->row_of(o.target) : nullptr;
  if (source == nullptr || target == nullptr) {
    host().log(sdk::LogLevel::kDebug, "ignoring an observation between nodes not in the latest node layout",
               {{"source", std::string(o.source)}, {"target", std::string(o.target)}});
    return;
  }
  const topology::TopologyModel model(config_.topology, layout->view);
  const topology::LinkInfo link = model.relation(*source, *target);
  seen.link = relation_key(static_cast<size_t>(link.relation));
  seen.link_mbit_per_second = link.bandwidth_mbps;
  seen.workload = o.workload_class;
  seen.memory_mib = static_cast<double>(o.memory_mib);
  seen.copied_mib = static_cast<double>(o.bytes) / kMib;
  seen.duration_seconds = o.duration_s;
  seen.downtime_ms = o.downtime_ms;
  bool used = false;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    used = calibration_.observe(seen);
    if (used) ++observations_;
  }
  if (!used) {
    host().log(sdk::LogLevel::kDebug, "ignoring an implausible observation",
               {{"source", std::string(o.source)},
                {"target", std::string(o.target)},
                {"duration_s", policies::format_number(o.duration_s)},
                {"bytes", std::to_string(o.bytes)}});
    return;
  }
  store_calibration();
}

MigrationInput MigrationCostPolicy::input_of(const sdk::PlacementQuery& query, double dirty_rate) const {
  MigrationInput in;
  in.memory_mib = static_cast<double>(std::max<std::int64_t>(0, query.resources[sdk::kMemoryMib]));
  in.dirty_mib_per_second = dirty_rate;
  in.disk_gib = config_.copy_disk ? static_cast<double>(std::max<std::int64_t>(0, query.resources[sdk::kDiskGib])) : 0;
  return in;
}

RowCost MigrationCostPolicy::base_cost(const sdk::PlacementQuery& query, const CalibratedParams& params) const {
  RowCost c;
  const auto wc = static_cast<size_t>(query.workload_class) < kWorkloadClasses
                      ? static_cast<size_t>(query.workload_class)
                      : static_cast<size_t>(WorkloadClass::kUnknown);
  c.dirty_rate = params.dirty_rate[wc];
  c.target_mode = query.source_row >= 0;
  if (c.target_mode) return c;
  // Placement: the move of this VM over a same-rack link, the same for every row.
  c.link.relation = Relation::kSameRack;
  c.link.bandwidth_mbps = config_.topology.bandwidth_mbps[static_cast<size_t>(Relation::kSameRack)];
  c.link.latency_ms = config_.topology.latency_ms[static_cast<size_t>(Relation::kSameRack)];
  c.efficiency = params.efficiency[static_cast<size_t>(Relation::kSameRack)];
  MigrationInput in = input_of(query, c.dirty_rate);
  in.link_mbit_per_second = c.link.bandwidth_mbps;
  in.efficiency = c.efficiency;
  c.estimate = estimate_migration(in, config_.model);
  return c;
}

RowCost MigrationCostPolicy::cost(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                  const topology::TopologyModel& model, const CalibratedParams& params,
                                  std::uint32_t row) const {
  return row_cost(base_cost(query, params), query, nodes, model, params, row);
}

RowCost MigrationCostPolicy::row_cost(const RowCost& base, const sdk::PlacementQuery& query,
                                      const sdk::NodeColumns& nodes, const topology::TopologyModel& model,
                                      const CalibratedParams& params, std::uint32_t row) const {
  RowCost c = base;
  if (c.target_mode) {
    const auto source = static_cast<std::uint32_t>(query.source_row);
    if (row == source) {
      c.source = true;  // staying is not a move
      c.score = 0;
      return c;
    }
    c.link = model.relation(source, row);
    c.efficiency = params.efficiency[static_cast<size_t>(c.link.relation)];
    MigrationInput in = input_of(query, c.dirty_rate);
    in.link_mbit_per_second = c.link.bandwidth_mbps;
    in.efficiency = c.efficiency;
    c.estimate = estimate_migration(in, config_.model);
  }
  const double time_share =
      std::isfinite(c.estimate.total_seconds) ? c.estimate.total_seconds / config_.time_cap_s : 1.0;
  if (c.target_mode) {
    c.score = 1.0 - std::min(1.0, time_share);
    return c;
  }
  // Placement: the chance this node needs an eviction, times what moving this VM would cost.
  bool usable = true;
  double u = 0;
  for (std::uint32_t r = 0; r < kFitResources; ++r) {
    const std::int64_t cap = policies::usable(nodes, row, r);
    if (cap <= 0) {
      usable = false;
      continue;
    }
    const float* p95 = has_usage_columns(nodes) ? nodes.predicted_p95[r] : nullptr;
    const float v = p95 != nullptr ? p95[row] : __builtin_nanf("");
    double used = 0;
    if (std::isfinite(v)) {
      used = std::max(0.0, static_cast<double>(v));
    } else {
      c.predicted = false;
      used = static_cast<double>(nodes.allocated[r][row]);
    }
    u = std::max(u, (used + static_cast<double>(query.resources[r])) / static_cast<double>(cap));
  }
  c.utilisation_after = usable ? u : INFINITY;
  c.risk = usable ? sigmoid((u - kRiskCentre) / kRiskWidth) : 1.0;
  c.score = 1.0 - std::min(1.0, c.risk * time_share);
  return c;
}

sdk::Status MigrationCostPolicy::on_check_request(const sdk::PlacementQuery& query) {
  if (query.source_row < -1) {
    return sdk::invalid_argument("/placement/source_row: expected a row or -1, got " +
                                 std::to_string(query.source_row));
  }
  return sdk::Status::ok();
}

sdk::Status MigrationCostPolicy::check_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes) {
  if (query.source_row >= 0 && static_cast<std::uint32_t>(query.source_row) >= nodes.rows) {
    return sdk::invalid_argument("/placement/source_row: row " + std::to_string(query.source_row) +
                                 " is not in the node table");
  }
  remember_layout(nodes);
  return sdk::Status::ok();
}

sdk::Status MigrationCostPolicy::on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                                std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) {
  std::fill(reject.begin(), reject.end(), std::uint8_t{0});
  if ((applies(query) & sdk::kPolicyFilters) == 0) return sdk::Status::ok();
  if (sdk::Status s = check_rows(query, nodes); !s.is_ok()) return s;
  const topology::TopologyModel model(config_.topology, nodes, &links_);
  const CalibratedParams params = calibrated();
  const RowCost base = base_cost(query, params);
  for (size_t i = 0; i < rows.size(); ++i) {
    const RowCost c = row_cost(base, query, nodes, model, params, rows[i]);
    if (!c.source && !(c.estimate.downtime_ms <= config_.hard_downtime_limit_ms)) reject[i] = kRejectDowntime;
  }
  return sdk::Status::ok();
}

sdk::Status MigrationCostPolicy::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                               std::span<const std::uint32_t> rows, std::span<double> out) {
  if (sdk::Status s = check_rows(query, nodes); !s.is_ok()) return s;
  const topology::TopologyModel model(config_.topology, nodes, &links_);
  const CalibratedParams params = calibrated();
  const RowCost base = base_cost(query, params);
  for (size_t i = 0; i < rows.size(); ++i) out[i] = row_cost(base, query, nodes, model, params, rows[i]).score;
  return sdk::Status::ok();
}

sdk::Status MigrationCostPolicy::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                                std::uint32_t row, sdk::FilterVerdict& verdict, sdk::NodeScore& score) {
  if (row >= nodes.rows) return sdk::invalid_argument("row " + std::to_string(row) + " is not in the node table");
  if (sdk::Status s = check_rows(query, nodes); !s.is_ok()) return s;
  const topology::TopologyModel model(config_.topology, nodes, &links_);
  const RowCost c = cost(query, nodes, model, calibrated(), row);
  const MigrationEstimate& e = c.estimate;
  verdict.pass = true;
  verdict.reason.clear();
  score.score = c.score;
  std::string s;
  if (c.source) {
    s = std::string(nodes.names[row]) + " runs the VM now: not a migration target";
  } else if (!c.target_mode) {
    s = "eviction risk " + percent_text(c.risk) + " (";
    if (!std::isfinite(c.utilisation_after)) {
      s += "no usable cpu or memory";
    } else {
      s += (c.predicted ? "p95 after placement " : "allocated after placement ") + percent_text(c.utilisation_after);
      if (!c.predicted) s += ", no usage prediction";
    }
    s += "); a move would take " + duration_text(e.total_seconds);
  } else {
    const auto source = static_cast<std::uint32_t>(query.source_row);
    s = "a move from " + std::string(nodes.names[source]) + " over the " + relation_text(c.link.relation) + " link (" +
        policies::format_number(c.link.bandwidth_mbps, 0) + " Mbit/s, " + percent_text(c.efficiency) +
        " usable) would take " + duration_text(e.total_seconds);
    if (e.possible) {
      s += " in " + std::to_string(e.rounds) + (e.rounds == 1 ? " round" : " rounds") + ", downtime " +
           downtime_text(e.downtime_ms);
    }
    if (e.possible && !e.converges) {
      s += " (does not converge: " + std::string(workload_class_name(query.workload_class)) + " guests dirty ~" +
           policies::format_number(c.dirty_rate, 0) + " MiB/s)";
    }
    if (config_.hard_downtime_limit_ms > 0 && !(e.downtime_ms <= config_.hard_downtime_limit_ms)) {
      verdict.pass = false;
      verdict.reason = "estimated downtime " + policies::format_number(e.downtime_ms / 1000.0, 2) + " s > " +
                       policies::format_number(config_.hard_downtime_limit_ms / 1000.0, 2) + " s limit";
    }
  }
  score.reason = s + ", score " + fixed(c.score, 2);
  return sdk::Status::ok();
}

}  // namespace novacron::policy::migration_cost

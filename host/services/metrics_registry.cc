#include "host/services/metrics_registry.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

namespace novacron {
namespace {

// Latency buckets in seconds, as Prometheus' client libraries default to.
constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

std::string escape_label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render_labels(const MetricLabels& labels, const std::string& extra = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    out += (out.empty() ? "" : ",") + k + "=\"" + escape_label_value(v) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);  // shortest representation that round-trips
}

}  // namespace

namespace {
bool is_alpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

// ^[a-zA-Z_:][a-zA-Z0-9_:]*$ (Prometheus data model)
bool MetricsRegistry::valid_metric_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alpha_(c) || is_digit(c) || c == ':'; });
}

// ^[a-zA-Z_][a-zA-Z0-9_]*$, not starting with "__" (reserved)
bool MetricsRegistry::valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__") || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alpha_(c) || is_digit(c); });
}

MetricsRegistry::Family* MetricsRegistry::family(std::string_view name, std::string_view help, Type type,
                                                 const MetricLabels& labels) {
  if (!valid_metric_name(name)) return nullptr;
  for (const auto& [k, v] : labels) {
    if (!valid_label_name(k)) return nullptr;
  }
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}}).first;
  }
  return it->second.type == type ? &it->second : nullptr;
}

bool MetricsRegistry::counter_add(std::string_view name, std::string_view help, const MetricLabels& labels,
                                  double delta) {
  if (delta < 0 || !std::isfinite(delta)) return false;  // counters only go up
  std::lock_guard<std::mutex> lock(mutex_);
  Family* f = family(name, help, Type::kCounter, labels);
  if (f == nullptr) return false;
  f->values[render_labels(labels)] += delta;
  return true;
}

bool MetricsRegistry::gauge_set(std::string_view name, std::string_view help, const MetricLabels& labels,
                                double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* f = family(name, help, Type::kGauge, labels);
  if (f == nullptr) return false;
  f->values[render_labels(labels)] = value;
  return true;
}

bool MetricsRegistry::histogram_observe(std::string_view name, std::string_view help, const MetricLabels& labels,
                                        double value) {
  if (!std::isfinite(value)) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  Family* f = family(name, help, Type::kHistogram, labels);
  if (f == nullptr) return false;
  Histogram& h = f->histograms[render_labels(labels)];
  if (h.bucket_counts.empty()) h.bucket_counts.assign(std::size(kBuckets), 0);
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    if (value <= kBuckets[i]) h.bucket_counts[i] += 1;
  }
  h.sum += value;
  h.count += 1;
  return true;
}

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, value] : f.values) {
      out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + format_value(value) + "\n";
    }
    for (const auto& entry : f.histograms) {
      const std::string& labels = entry.first;
      const Histogram& h = entry.second;
      auto with = [&labels](const std::string& extra) {
        std::string l = labels;
        if (!extra.empty()) l += (l.empty() ? "" : ",") + extra;
        return l.empty() ? std::string() : "{" + l + "}";
      };
      for (size_t i = 0; i < h.bucket_counts.size(); ++i) {
        out += name + "_bucket" + with("le=\"" + format_value(kBuckets[i]) + "\"") + " " +
               format_value(h.bucket_counts[i]) + "\n";
      }
      out += name + "_bucket" + with("le=\"+Inf\"") + " " + format_value(h.count) + "\n";
      out += name + "_sum" + with("") + " " + format_value(h.sum) + "\n";
      out += name + "_count" + with("") + " " + format_value(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace novacron

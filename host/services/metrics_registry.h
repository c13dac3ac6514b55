// Counters, gauges and histograms from the host and its plugins, rendered in the Prometheus
// text exposition format (GET /metrics).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace novacron {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Each returns false (and records nothing) when `name` is invalid or was first registered
  // with another type; the caller logs that once.
  bool counter_add(std::string_view name, std::string_view help, const MetricLabels& labels, double delta);
  bool gauge_set(std::string_view name, std::string_view help, const MetricLabels& labels, double value);
  bool histogram_observe(std::string_view name, std::string_view help, const MetricLabels& labels, double value);

  std::string render_prometheus() const;

  static bool valid_metric_name(std::string_view name);
  static bool valid_label_name(std::string_view name);

 private:
  struct Histogram {
    std::vector<double> bucket_counts;  // cumulative per bound in kBuckets
    double sum = 0;
    double count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, double> values;         // rendered label set -> value
    std::map<std::string, Histogram> histograms;  // rendered label set -> histogram
  };
  Family* family(std::string_view name, std::string_view help, Type type, const MetricLabels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace novacron

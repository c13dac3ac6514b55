// What the placement engine asks of a policy (docs/design/scheduler.md 1.2): batch calls
// over the node table's rows, answering with reason codes and raw scores, words only for the
// few rows an explanation shows. Plugins (SchedulingPolicy) reach the engine through an
// adapter implementing this; the engine itself knows only this interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/scheduler/node_table.h"

namespace novacron::scheduler {

// What is being placed, as the engine and its policies see it.
struct PlacementQuery {
  std::string name;  // the VM's name
  ResourceVector resources{};
  std::string driver;                     // "" = any
  std::vector<std::string> capabilities;  // required of the driver
  std::uint64_t seed = 0;                 // tie-breaking; derived from the name by default
};

enum class ScoreScale : std::uint8_t {
  kRelative,  // only the order matters: min-max normalised over the candidates
  kUnit,      // already in [0, 1] with a meaning (0.62 = 62 % used): taken as it is
};

class PlacementPolicy {
 public:
  static constexpr std::uint32_t kFilter = 1;
  static constexpr std::uint32_t kScorer = 2;

  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual std::uint32_t roles() const = 0;
  virtual ScoreScale scale() const { return ScoreScale::kRelative; }

  // Writes a code per row: 0 = passes, else a reason code (reason() says it in words).
  virtual void filter(const PlacementQuery&, const NodeTable&, std::span<const std::uint32_t> rows,
                      std::span<std::uint8_t> reject) const {
    (void)rows;
    std::fill(reject.begin(), reject.end(), 0);
  }
  virtual std::string reason(std::uint8_t code) const { return "rejected (code " + std::to_string(code) + ")"; }

  // Writes a raw score per row: higher is better.
  virtual void score(const PlacementQuery&, const NodeTable&, std::span<const std::uint32_t> rows,
                     std::span<double> out) const {
    (void)rows;
    std::fill(out.begin(), out.end(), 0.0);
  }
};

}  // namespace novacron::scheduler

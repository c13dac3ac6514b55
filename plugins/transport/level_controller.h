// Chooses the zstd level of the next batch (docs/transport-protocol.md, "Compression").
// Fixed modes return their level. Adaptive mode climbs a ladder [raw, 1, 3, 6, 9] from the
// "who waits" signal of each 250 ms window: when finished batches mostly wait for the link
// (socket or bandwidth limit), compressing harder pays; when the link mostly waits for the
// compressor, it does not. A step up that gained less than 3 % ratio is undone and held
// for 5 s (plateau). At raw, every 2 s one batch is probed at level 1, and the ladder is
// climbed again only when the link is the bottleneck and the probe's ratio is >= 1.15. So
// a fast local link settles on raw and a slow WAN link climbs until the ratio plateaus.
// Pure: observations and a Clock in, a level out.
#pragma once

#include <array>
#include <cstdint>

#include "clock.h"

namespace novacron::transport {

class LevelController {
 public:
  // mode: -1 adaptive, 0 raw, 1..19 fixed.
  LevelController(int mode, int max_level, const Clock& clock);

  // The level for the next batch (0 = raw); in adaptive mode at raw, sometimes a probe.
  int next_level();
  // A batch was compressed (or probed) at `level`: its raw and compressed sizes.
  void observe_ratio(int level, std::int64_t raw_bytes, std::int64_t compressed_bytes);
  // Time the sender spent with a finished batch waiting for the link, and time the link
  // spent idle waiting for a batch to finish compressing.
  void observe_waits(std::int64_t link_wait_ns, std::int64_t cpu_wait_ns);

  int current_level() const { return mode_ >= 0 ? mode_ : kLadder[step_]; }
  bool adaptive() const { return mode_ < 0; }

 private:
  static constexpr std::array<int, 5> kLadder = {0, 1, 3, 6, 9};
  void maybe_decide(std::int64_t now);
  double ratio_at(size_t step) const { return ratio_[step]; }

  int mode_;
  size_t max_step_;
  const Clock& clock_;
  size_t step_ = 1;
  std::int64_t window_start_;
  std::int64_t link_wait_ = 0, cpu_wait_ = 0;
  std::array<double, 5> ratio_{1, 1, 1, 1, 1};  // EWMA of raw/compressed per step
  std::array<bool, 5> seen_{};                  // whether a step's ratio was ever observed
  std::int64_t hold_until_ = 0;
  size_t probation_from_ = 0;  // step before the last step up (0 = none pending)
  bool on_probation_ = false;
  std::int64_t last_probe_ = 0;
  bool probe_pending_ = false;
  double probe_ratio_ = 0;
};

}  // namespace novacron::transport

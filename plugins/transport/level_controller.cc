#include "level_controller.h"

#include <algorithm>

namespace novacron::transport {

namespace {
constexpr std::int64_t kWindowNs = 250'000'000;
constexpr std::int64_t kPlateauHoldNs = 5'000'000'000;
constexpr std::int64_t kProbeEveryNs = 2'000'000'000;
constexpr double kLinkBound = 0.6;
constexpr double kCpuBound = 0.25;
constexpr double kMinGain = 1.03;
constexpr double kProbeRatio = 1.15;
}  // namespace

LevelController::LevelController(int mode, int max_level, const Clock& clock)
    : mode_(mode), max_step_(kLadder.size() - 1), clock_(clock), window_start_(clock.now_ns()) {
  while (max_step_ > 0 && kLadder[max_step_] > max_level) --max_step_;
  step_ = std::min<size_t>(1, max_step_);
  last_probe_ = window_start_;
}

int LevelController::next_level() {
  if (mode_ >= 0) return mode_;
  const std::int64_t now = clock_.now_ns();
  maybe_decide(now);
  if (step_ == 0 && now - last_probe_ >= kProbeEveryNs) {
    last_probe_ = now;
    probe_pending_ = true;
    return 1;  // the probe: compressed, and sent compressed if it pays
  }
  return kLadder[step_];
}

void LevelController::observe_ratio(int level, std::int64_t raw_bytes, std::int64_t compressed_bytes) {
  if (raw_bytes <= 0 || compressed_bytes <= 0) return;
  const double r = static_cast<double>(raw_bytes) / static_cast<double>(compressed_bytes);
  const auto it = std::find(kLadder.begin(), kLadder.end(), level);
  if (it == kLadder.end()) return;
  const auto s = static_cast<size_t>(it - kLadder.begin());
  ratio_[s] = seen_[s] ? 0.7 * ratio_[s] + 0.3 * r : r;
  seen_[s] = true;
  if (probe_pending_ && level == 1) {
    probe_ratio_ = r;
    probe_pending_ = false;
  }
}

void LevelController::observe_waits(std::int64_t link_wait_ns, std::int64_t cpu_wait_ns) {
  link_wait_ += std::max<std::int64_t>(0, link_wait_ns);
  cpu_wait_ += std::max<std::int64_t>(0, cpu_wait_ns);
}

void LevelController::maybe_decide(std::int64_t now) {
  const std::int64_t window = now - window_start_;
  if (window < kWindowNs) return;
  const double link_bound = static_cast<double>(link_wait_) / static_cast<double>(window);
  const double cpu_bound = static_cast<double>(cpu_wait_) / static_cast<double>(window);
  window_start_ = now;
  link_wait_ = cpu_wait_ = 0;
  // A probe counts for the window it finished in, never later.
  const double probe = probe_ratio_;
  probe_ratio_ = 0;

  if (on_probation_) {
    on_probation_ = false;
    if (ratio_at(step_) < ratio_at(probation_from_) * kMinGain) {  // the step up bought nothing
      step_ = probation_from_;
      hold_until_ = now + kPlateauHoldNs;
      return;
    }
  }
  if (cpu_bound >= kCpuBound && step_ > 0) {
    --step_;
    return;
  }
  // Data that does not compress: compressing costs CPU for nothing, whatever the link.
  if (step_ > 0 && seen_[step_] && ratio_at(step_) < kProbeRatio) {
    step_ = 0;
    return;
  }
  if (link_bound < kLinkBound || now < hold_until_) return;
  if (step_ == 0) {
    if (probe >= kProbeRatio) step_ = 1;
    return;
  }
  if (step_ < max_step_) {
    probation_from_ = step_;
    on_probation_ = true;
    ++step_;
  }
}

}  // namespace novacron::transport

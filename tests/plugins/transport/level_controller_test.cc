// The adaptive compression level (plugins/transport/level_controller.h), driven by a fake
// clock and synthetic observations: which side waits decides the direction.
#include "level_controller.h"

#include <gtest/gtest.h>

namespace novacron::transport {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// Runs `seconds` of 10 ms batches: each waits link_share of its time for the link and
// cpu_share for the compressor; compresses to `ratio_at(level)`.
int run(LevelController& c, FakeClock& clock, double seconds, double link_share, double cpu_share,
        double (*ratio_at)(int)) {
  int level = 0;
  for (int i = 0; i < static_cast<int>(seconds * 100); ++i) {
    level = c.next_level();
    if (level > 0) c.observe_ratio(level, 1 << 20, static_cast<std::int64_t>((1 << 20) / ratio_at(level)));
    c.observe_waits(static_cast<std::int64_t>(10 * kMs * link_share), static_cast<std::int64_t>(10 * kMs * cpu_share));
    clock.advance(10 * kMs);
  }
  return c.current_level();
}

double gains_with_level(int level) { return 2.0 + level * 0.3; }  // each step pays
double flat_after_3(int level) { return level >= 3 ? 3.0 : 2.0 + level * 0.3; }

TEST(LevelControllerTest, FixedModesNeverMove) {
  FakeClock clock;
  LevelController raw(0, 9, clock), fixed(1, 9, clock);
  EXPECT_EQ(run(raw, clock, 5, 1.0, 0, gains_with_level), 0);
  EXPECT_EQ(raw.next_level(), 0);
  EXPECT_EQ(run(fixed, clock, 5, 1.0, 0, gains_with_level), 1);
  EXPECT_EQ(fixed.next_level(), 1);
}

TEST(LevelControllerTest, FastLinkSettlesOnRaw) {
  // Loopback: the link never waits, the sender waits for the compressor.
  FakeClock clock;
  LevelController c(-1, 9, clock);
  EXPECT_EQ(c.current_level(), 1);
  EXPECT_EQ(run(c, clock, 3, 0.0, 0.5, gains_with_level), 0);
  // It stays raw while the link keeps up, probes aside.
  EXPECT_EQ(run(c, clock, 10, 0.0, 0.0, gains_with_level), 0);
}

TEST(LevelControllerTest, SlowLinkClimbsWhileRatioGains) {
  FakeClock clock;
  LevelController c(-1, 9, clock);
  EXPECT_EQ(run(c, clock, 5, 0.9, 0.0, gains_with_level), 9);
}

TEST(LevelControllerTest, ClimbStopsAtThePlateauAndRespectsTheCeiling) {
  FakeClock clock;
  LevelController c(-1, 9, clock);
  // Level 6 buys nothing over 3: it steps back to 3 and holds.
  EXPECT_EQ(run(c, clock, 5, 0.9, 0.0, flat_after_3), 3);
  FakeClock clock2;
  LevelController capped(-1, 3, clock2);
  EXPECT_EQ(run(capped, clock2, 5, 0.9, 0.0, gains_with_level), 3);
}

TEST(LevelControllerTest, RawClimbsBackOnlyWhenTheLinkWaitsAndProbesPay) {
  FakeClock clock;
  LevelController c(-1, 9, clock);
  ASSERT_EQ(run(c, clock, 3, 0.0, 0.5, gains_with_level), 0);
  // The link becomes the bottleneck and level-1 probes compress 2.3x: back to compressing.
  EXPECT_GE(run(c, clock, 6, 0.9, 0.0, gains_with_level), 1);
  // Incompressible data: probes at ratio 1 keep it raw even on a slow link.
  FakeClock clock3;
  LevelController d(-1, 9, clock3);
  ASSERT_EQ(run(d, clock3, 3, 0.0, 0.5, gains_with_level), 0);
  EXPECT_EQ(run(d, clock3, 6, 0.9, 0.0, [](int) { return 1.0; }), 0);
  // Also when it started at level 1 on data that does not compress.
  FakeClock clock4;
  LevelController e(-1, 9, clock4);
  EXPECT_EQ(run(e, clock4, 2, 0.9, 0.0, [](int) { return 1.0; }), 0);
}

}  // namespace
}  // namespace novacron::transport

#include "core/log_throttle.h"

#include <gtest/gtest.h>

namespace callgate {
namespace {

constexpr Instant kT0{std::chrono::seconds(1'767'225'600)};

TEST(LogThrottleTest, LetsABurstThroughThenHoldsBackAndCounts) {
  LogThrottle throttle(10, 20, kT0);
  std::uint64_t held_back = 99;
  int written = 0;
  for (int i = 0; i < 1000; ++i) {
    if (throttle.Admit(kT0, held_back)) {
      ++written;
      EXPECT_EQ(held_back, 0u);
    }
  }
  EXPECT_EQ(written, 20);
  // A tenth of a second later one more line may go, and says how many were held back.
  ASSERT_TRUE(throttle.Admit(kT0 + Millis(100), held_back));
  EXPECT_EQ(held_back, 980u);
  EXPECT_FALSE(throttle.Admit(kT0 + Millis(100), held_back));
}

TEST(LogThrottleTest, SteadyLinesBelowTheRateAreAllWritten) {
  LogThrottle throttle(10, 20, kT0);
  std::uint64_t held_back = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(throttle.Admit(kT0 + Millis(200) * i, held_back)) << i;
    EXPECT_EQ(held_back, 0u);
  }
}

}  // namespace
}  // namespace callgate

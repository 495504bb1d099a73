// For tests: the fixed instant rule tests count from, and the units they write durations in.
// Test-only; pure.
#pragma once

#include <chrono>

#include "core/time.h"

namespace callgate::test_time {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

inline constexpr Instant kT0{seconds(1'767'225'600)};  // 2026-01-01T00:00:00Z

}  // namespace callgate::test_time

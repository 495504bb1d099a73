// LogThrottle: lets through at most `rate` lines a second (bursts of `burst`) of one kind of log
// line and counts those it holds back, so the next line written can say how many there were: a
// client that makes every request fail cannot flood the log. Pure time arithmetic — the caller
// passes `now`. Thread-compatible (guard it with the owner's lock).
#pragma once

#include <cstdint>
#include <utility>

#include "core/token_bucket.h"

namespace callgate {

class LogThrottle {
 public:
  LogThrottle(double rate_per_second, double burst, Instant now)
      : bucket_(rate_per_second, burst, now) {}

  // True if a line may be written at `now`; then `held_back` is how many lines were held back
  // since the last one written.
  bool Admit(Instant now, std::uint64_t& held_back) {
    if (!bucket_.TryTake(now)) {
      ++held_;
      return false;
    }
    held_back = std::exchange(held_, 0);
    return true;
  }

 private:
  TokenBucket bucket_;
  std::uint64_t held_ = 0;
};

}  // namespace callgate

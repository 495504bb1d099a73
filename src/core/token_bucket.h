// A token bucket: `rate` tokens per second, holding at most `burst`. Pure time arithmetic —
// the caller passes `now`. Thread-compatible (guard it with the owner's lock).
#pragma once

#include <algorithm>

#include "core/time.h"

namespace callgate {

class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst, Instant now)
      : rate_per_ms_(rate_per_second / 1000.0), burst_(burst), tokens_(burst), last_(now) {}

  // Takes one token if there is one.
  bool TryTake(Instant now) {
    if (now > last_) {
      tokens_ =
          std::min(burst_, tokens_ + static_cast<double>((now - last_).count()) * rate_per_ms_);
      last_ = now;
    }
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_per_ms_;
  double burst_;
  double tokens_;
  Instant last_;
};

}  // namespace callgate

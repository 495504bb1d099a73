#include "log/log.h"

#include <array>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>

#include "core/log_throttle.h"

namespace callgate {

namespace {

constexpr double kLinesPerSecond = 10;
constexpr double kBurst = 20;

struct Throttles {
  std::mutex mu;
  std::array<std::optional<LogThrottle>, 3> by_kind;  // indexed by LogKind
};

}  // namespace

Instant LogNow() { return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now()); }

void Log(LogKind kind, Instant now, std::string_view line) {
  static Throttles throttles;
  std::uint64_t held_back = 0;
  {
    std::lock_guard lock(throttles.mu);
    auto& throttle = throttles.by_kind[static_cast<std::size_t>(kind)];
    if (!throttle) throttle.emplace(kLinesPerSecond, kBurst, now);
    if (!throttle->Admit(now, held_back)) return;
  }
  std::string out(line);
  if (held_back > 0) {
    out += " (" + std::to_string(held_back) + " similar lines held back before this one)";
  }
  out += '\n';
  std::cerr << out;
}

}  // namespace callgate

// What the client makes of an error reply: a redirection to follow, a refusal to retry after a
// back-off, a missing script, or an answer for the caller. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "redis/cluster_client.h"

namespace callgate::redis {

enum class ErrorClass {
  kMoved,      // the slot lives elsewhere now: update the map, resend there
  kAsk,        // this one command goes to the importing node, after ASKING
  kRetryable,  // refused before running (TRYAGAIN, CLUSTERDOWN, LOADING, …): back off, resend
  kNoScript,   // EVALSHA of a script this node does not have: SCRIPT LOAD it, resend
  kOther,      // the caller's answer (WRONGTYPE, a script's error, …)
};
ErrorClass ClassifyError(std::string_view message);

struct Redirect {
  std::uint16_t slot = 0;
  Endpoint target;
};
// "MOVED 3999 127.0.0.1:6381" or "ASK …"; an empty host (Redis 7 sends ":6381" when it knows no
// address for the node) means `current_host`, the host that sent the redirection.
std::optional<Redirect> ParseRedirect(std::string_view message, std::string_view current_host);

// How long to wait before resending a refused command: short and growing with `attempt` (0 for
// the first retry), capped, with `jitter` in [0, 1] spreading the retries of many clients.
std::chrono::microseconds BackoffDelay(int attempt, double jitter);
inline constexpr std::chrono::microseconds kMinBackoff{1000};
inline constexpr std::chrono::microseconds kMaxBackoff{100000};

}  // namespace callgate::redis

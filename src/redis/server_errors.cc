// Error replies: classification, MOVED/ASK parsing, retry back-off.
#include "redis/server_errors.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace callgate::redis {
namespace {

bool StartsWithWord(std::string_view message, std::string_view word) {
  return message.starts_with(word) &&
         (message.size() == word.size() || message[word.size()] == ' ');
}

}  // namespace

ErrorClass ClassifyError(std::string_view message) {
  if (StartsWithWord(message, "MOVED")) return ErrorClass::kMoved;
  if (StartsWithWord(message, "ASK")) return ErrorClass::kAsk;
  if (StartsWithWord(message, "NOSCRIPT")) return ErrorClass::kNoScript;
  // Each of these is sent before the command runs, so resending cannot apply it twice.
  for (std::string_view refusal :
       {"TRYAGAIN", "CLUSTERDOWN", "LOADING", "NOREPLICAS", "MASTERDOWN"}) {
    if (StartsWithWord(message, refusal)) return ErrorClass::kRetryable;
  }
  return ErrorClass::kOther;
}

std::optional<Redirect> ParseRedirect(std::string_view message, std::string_view current_host) {
  std::size_t first = message.find(' ');
  if (first == std::string_view::npos) return std::nullopt;
  std::string_view rest = message.substr(first + 1);
  std::size_t second = rest.find(' ');
  if (second == std::string_view::npos) return std::nullopt;
  std::string_view slot_text = rest.substr(0, second);
  std::string_view address = rest.substr(second + 1);
  unsigned slot = 0;
  auto [end, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (ec != std::errc() || end != slot_text.data() + slot_text.size() || slot >= 16384) {
    return std::nullopt;
  }
  // The port follows the last colon, so an IPv6 address keeps its own colons.
  std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = address.substr(0, colon);
  std::string_view port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [port_end, port_ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_ec != std::errc() || port_end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  if (host.empty()) host = current_host;
  return Redirect{static_cast<std::uint16_t>(slot),
                  Endpoint{std::string(host), static_cast<std::uint16_t>(port)}};
}

std::chrono::microseconds BackoffDelay(int attempt, double jitter) {
  // 1 ms doubling to 100 ms: a slot migration or a failover ends in tens of milliseconds to a
  // few seconds, and the deadline, not a count, ends the retries.
  const int shift = std::clamp(attempt, 0, 16);
  const std::int64_t ceiling =
      std::min<std::int64_t>(kMinBackoff.count() << shift, kMaxBackoff.count());
  jitter = std::clamp(jitter, 0.0, 1.0);
  // Half fixed, half random: never shorter than half the step, so retries still spread out.
  const auto delay = static_cast<std::int64_t>(static_cast<double>(ceiling) * (0.5 + 0.5 * jitter));
  return std::chrono::microseconds(std::max<std::int64_t>(delay, kMinBackoff.count()));
}

}  // namespace callgate::redis

// Time for the domain: an Instant is milliseconds since the Unix epoch (UTC).
// Core never reads a clock; callers read one once per request or event and pass `now` in.
// Everything here is pure and thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace callgate {

using Millis = std::chrono::milliseconds;
using Instant = std::chrono::sys_time<Millis>;

constexpr Millis kHours24 = std::chrono::hours(24);
constexpr Millis kDays7 = std::chrono::hours(24 * 7);

inline Instant FromUnixSeconds(std::int64_t seconds) {
  return Instant(std::chrono::seconds(seconds));
}
inline Instant FromUnixMillis(std::int64_t millis) { return Instant(Millis(millis)); }
inline std::int64_t ToUnixMillis(Instant t) { return t.time_since_epoch().count(); }

// `YYYY-MM-DDTHH:MM:SS.ffZ`: UTC with two fractional digits (truncated), as 8x8 writes
// `expirationTime`.
std::string FormatCentis(Instant t);
// The same written at `out` (room for kMaxTimestampChars); returns the end.
char* FormatCentisTo(char* out, Instant t);
// The most characters FormatCentis/FormatMillis write (`YYYY-MM-DDTHH:MM:SS.fffZ`).
inline constexpr std::size_t kMaxTimestampChars = 24;
// `YYYY-MM-DDTHH:MM:SS.fffZ`: UTC with milliseconds, for error and history timestamps.
std::string FormatMillis(Instant t);
// Parses the formats above and any RFC 3339 UTC `...Z` timestamp; nullopt if malformed.
std::optional<Instant> ParseTimestamp(std::string_view text);

}  // namespace callgate

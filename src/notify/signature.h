// Notification signatures: `Callgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">`, one v1 per secret that signs at that time (two during a rotation's overlap), so
// a receiver holding either secret verifies. The HMAC is the Meta webhooks' own code
// (ingest/signature.h). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace callgate {

inline constexpr char kSignatureHeader[] = "Callgate-Signature";

std::string SignNotification(std::int64_t unix_seconds, std::string_view body,
                             const std::vector<std::string>& secrets);

// What a receiver does: true if `header` has a t within `tolerance_seconds` of `now_seconds` and
// a v1 that is the HMAC of "<t>.<body>" under `secret` (constant-time compare).
bool VerifyNotificationSignature(std::string_view header, std::string_view body,
                                 std::string_view secret, std::int64_t now_seconds,
                                 std::int64_t tolerance_seconds);

}  // namespace callgate

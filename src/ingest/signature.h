// Meta webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>`.
// Several secrets may be configured at once so an app secret can be rotated without downtime.
// Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace callgate {

// True if `header` is a valid signature of `body` under any of `secrets` (constant-time compare).
bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets);

// The header value for `body` under `secret`, for tests and tools.
std::string SignMetaPayload(std::string_view body, std::string_view secret);

}  // namespace callgate

// Meta webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>`.
// Several secrets may be configured at once so an app secret can be rotated without downtime.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace callgate {

// The configured app secrets. Each thread keeps one keyed HMAC context per secret
// (core/thread_cache.h), owned by this object: a thread that meets another MetaSignatures (the
// secrets were rotated and the service rebuilt) drops the contexts of the old secrets.
class MetaSignatures {
 public:
  explicit MetaSignatures(std::vector<std::string> secrets);

  // True if `header` is a valid signature of `body` under any secret (constant-time compare).
  bool Verify(std::string_view body, std::string_view header) const;
  // The header value for `body` under the secret at `index`.
  std::string Sign(std::string_view body, std::size_t index = 0) const;

 private:
  std::vector<std::string> secrets_;  // empty ones never verify
  std::uint64_t id_;                  // owner of the per-thread HMAC contexts
};

// One-off forms of MetaSignatures::Verify and Sign, for tests and tools.
bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets);

std::string SignMetaPayload(std::string_view body, std::string_view secret);

}  // namespace callgate

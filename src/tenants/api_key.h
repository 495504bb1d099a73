// API keys: `cgk_<key id: 16 hex>_<secret: 32 random bytes, base64url>`. The key id is public
// (listed, logged, used to revoke); only SHA-256 of the secret is stored — a 256-bit random
// secret needs no slow hash — and it is compared in constant time. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tenants/tenants.h"

namespace callgate {

struct NewApiKey {
  std::string plaintext;  // shown once, never stored
  ApiKey record;
};

// Draws the key from OpenSSL's CSPRNG; nullopt only if the CSPRNG fails.
std::optional<NewApiKey> GenerateApiKey(const std::string& account_id, Instant now);

// A secret that signs an account's notifications: `cgws_` and 32 random bytes, base64url. Kept
// in the store (HMAC needs it). nullopt only if the CSPRNG fails.
std::optional<std::string> GenerateSigningSecret();

// The account the presented key belongs to, if it is well-formed, known and not revoked.
const Account* Authenticate(const TenantSnapshot& tenants, std::string_view presented_key);

// How many presented secrets this thread has hashed (tests use it to see that every refusal of a
// well-formed key costs the same work).
std::uint64_t SecretsHashedOnThisThread();

// Authenticate, remembering per thread the last key it accepted and the snapshot it accepted it
// against: the same key presented again against the same snapshot is recognised by one
// constant-time comparison instead of a SHA-256 (a tenth of a status read's instructions). Any
// tenant change (a revocation included) makes a new snapshot, which verifies afresh.
const Account* AuthenticateCached(const std::shared_ptr<const TenantSnapshot>& tenants,
                                  std::string_view presented_key);

}  // namespace callgate

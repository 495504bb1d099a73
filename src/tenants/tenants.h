// Tenants: accounts own subaccounts and API keys; subaccounts own channels. A TenantSnapshot
// is an immutable copy of all of them, what the request path reads. Plain values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/limits.h"
#include "core/thread_cache.h"
#include "core/time.h"

namespace callgate {

struct Account {
  std::string id;
  Instant created_at;
};

struct Subaccount {
  std::string id;
  std::string account_id;
  Instant created_at;
};

struct Channel {
  std::string id;
  std::string subaccount_id;
  std::string phone_number_id;  // upstream (Meta) business phone number id
  bool callback_permission_enabled = false;
  LimitsProfile limits = LimitsProfile::kProduction;
  Instant created_at;
};

using Sha256 = std::array<std::uint8_t, 32>;

struct ApiKey {
  std::string key_id;  // public part of the key, safe to list and log
  std::string account_id;
  Sha256 secret_hash{};  // SHA-256 of the secret part; the secret itself is never stored
  Instant created_at;
  std::optional<Instant> revoked_at;
};

// Where an account's notifications go (issue 13), and the secrets that sign them. HMAC needs the
// secret itself, so it is kept (unlike an API key's); never printed but once, never logged.
// After a rotation the previous secret also signs until `previous_until`.
struct NotifyTarget {
  std::string url;  // http:// or https://
  std::string secret;
  std::string previous_secret;  // empty: none
  std::optional<Instant> previous_until;
  Instant updated_at;

  // The secrets that sign at `now`: the current one, then the previous while it overlaps.
  std::vector<std::string> SigningSecrets(Instant now) const;
};

struct TenantSnapshot {
  std::unordered_map<std::string, Account> accounts;
  std::unordered_map<std::string, Subaccount> subaccounts;
  std::unordered_map<std::string, Channel> channels;
  std::unordered_map<std::string, std::string> channel_by_phone_number_id;
  std::unordered_map<std::string, ApiKey> api_keys;              // by key id, revoked ones included
  std::unordered_map<std::string, NotifyTarget> notify_targets;  // by account id
  CacheOwnerId cache_owner;  // keys per-thread caches of what was checked against this snapshot

  const Channel* FindChannel(const std::string& id) const;
  const Channel* FindChannelByPhoneNumberId(const std::string& phone_number_id) const;
  const Subaccount* FindSubaccount(const std::string& id) const;
  // The notification target of the account that owns `channel_id`, if it has one.
  const NotifyTarget* FindNotifyTarget(const std::string& channel_id) const;
};

bool ValidTenantId(std::string_view id);

}  // namespace callgate

// Admin operations on tenants, as the `callgate admin` CLI exposes them. Each returns a process
// exit code and writes its result to `out` (machine-readable: one object per line) and problems
// to `err`. Thread-compatible.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "tenants/tenant_store.h"

namespace callgate {

struct AdminContext {
  TenantStore& store;
  Instant now;
  std::ostream& out;
  std::ostream& err;
};

int CreateAccount(const AdminContext& ctx, const std::string& id);
int CreateSubaccount(const AdminContext& ctx, const std::string& id, const std::string& account);
int CreateChannel(const AdminContext& ctx, const Channel& channel);
int SetChannelCallbackPermission(const AdminContext& ctx, const std::string& channel_id,
                                 bool enabled);
// Prints the new key alone on `out`.
int CreateKey(const AdminContext& ctx, const std::string& account);
int ListKeys(const AdminContext& ctx, const std::string& account);
int RevokeKey(const AdminContext& ctx, const std::string& key_id);
// kind: "accounts", "subaccounts", "channels" or "all".
int List(const AdminContext& ctx, const std::string& kind);

// Notifications (issue 13). Set prints the new signing secret alone on `out`; show prints the URL
// and status, never a secret; rotate-secret prints the new secret, the previous one signing too
// for kSecretOverlap; clear removes the target.
int SetNotify(const AdminContext& ctx, const std::string& account, const std::string& url);
int ShowNotify(const AdminContext& ctx, const std::string& account);
int RotateNotifySecret(const AdminContext& ctx, const std::string& account);
int ClearNotify(const AdminContext& ctx, const std::string& account);
inline constexpr Millis kSecretOverlap = std::chrono::hours(24);
// Whether `url` is one notifications can be POSTed to: http:// or https://, a host, no spaces,
// no credentials.
bool ValidNotifyUrl(std::string_view url);

// Creates the demo tenant (once) and a fresh key for it; the key, or nullopt after printing why.
std::optional<std::string> EnsureDemoTenant(const AdminContext& ctx);

inline constexpr std::string_view kDemoAccount = "demo";
inline constexpr std::string_view kDemoSubaccount = "demo-sub";
inline constexpr std::string_view kDemoChannel = "demo-channel";
inline constexpr std::string_view kDemoPhoneNumberId = "100000000000001";

}  // namespace callgate

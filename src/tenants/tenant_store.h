// TenantStore: where accounts, subaccounts, channels and API keys are kept, in domain words.
// Backends (store/sqlite, store/memory) implement it beside the pair store; the admin CLI writes
// through it and TenantDirectory reads it. All methods are thread-safe and synchronous (tenant
// changes are rare and come from administrators, not from the request path).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/store_error.h"
#include "tenants/tenants.h"

namespace callgate {

class TenantStore {
 public:
  virtual ~TenantStore() = default;

  virtual StoreStatus CreateAccount(const Account& account) = 0;
  virtual StoreStatus CreateSubaccount(const Subaccount& subaccount) = 0;
  virtual StoreStatus CreateChannel(const Channel& channel) = 0;
  virtual StoreStatus SetCallbackPermission(const std::string& channel_id, bool enabled) = 0;
  virtual StoreStatus AddApiKey(const ApiKey& key) = 0;
  virtual StoreStatus RevokeApiKey(const std::string& key_id, Instant at) = 0;
  // Sets the account's notification target, or clears it (nullopt). kNotFound: no such account.
  virtual StoreStatus SetNotifyTarget(const std::string& account_id,
                                      const std::optional<NotifyTarget>& target) = 0;
  // Increases whenever tenants change (in this or another process sharing the store).
  virtual StoreResult<std::uint64_t> TenantGeneration() = 0;
  // Moves once a tenant change is committed, in this or another process sharing the store,
  // before the change's call returns; cheap enough to read on every request (no system call).
  virtual std::uint64_t TenantChanges() = 0;
  virtual StoreResult<TenantSnapshot> LoadTenants() = 0;
};

}  // namespace callgate

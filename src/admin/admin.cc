#include "admin/admin.h"

#include <algorithm>
#include <vector>

#include "tenants/api_key.h"

namespace callgate {
namespace {

int Report(const AdminContext& ctx, StoreStatus status, std::string_view what,
           std::string_view id) {
  if (status.ok()) {
    ctx.out << id << "\n";
    return 0;
  }
  ctx.err << "error: " << what << " " << id << ": " << StoreErrorName(status.error()) << "\n";
  return 1;
}

bool CheckId(const AdminContext& ctx, std::string_view what, std::string_view id) {
  if (ValidTenantId(id)) return true;
  ctx.err << "error: invalid " << what << " id '" << id
          << "': use 1-64 characters from [A-Za-z0-9._-]\n";
  return false;
}

template <class Map>
std::vector<const typename Map::mapped_type*> Sorted(const Map& map) {
  std::vector<const typename Map::mapped_type*> items;
  for (const auto& [id, item] : map) items.push_back(&item);
  std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->id < b->id; });
  return items;
}

}  // namespace

int CreateAccount(const AdminContext& ctx, const std::string& id) {
  if (!CheckId(ctx, "account", id)) return 2;
  return Report(ctx, ctx.store.CreateAccount({id, ctx.now}), "account", id);
}

int CreateSubaccount(const AdminContext& ctx, const std::string& id, const std::string& account) {
  if (!CheckId(ctx, "subaccount", id)) return 2;
  const StoreStatus status = ctx.store.CreateSubaccount({id, account, ctx.now});
  if (!status.ok() && status.error() == StoreError::kNotFound) {
    ctx.err << "error: account " << account << " does not exist\n";
    return 1;
  }
  return Report(ctx, status, "subaccount", id);
}

int CreateChannel(const AdminContext& ctx, const Channel& channel) {
  if (!CheckId(ctx, "channel", channel.id)) return 2;
  if (channel.phone_number_id.empty() || channel.phone_number_id.size() > 64) {
    ctx.err << "error: --phone-number-id must be 1-64 characters\n";
    return 2;
  }
  Channel ch = channel;
  ch.created_at = ctx.now;
  const StoreStatus status = ctx.store.CreateChannel(ch);
  if (!status.ok() && status.error() == StoreError::kNotFound) {
    ctx.err << "error: subaccount " << ch.subaccount_id << " does not exist\n";
    return 1;
  }
  if (!status.ok() && status.error() == StoreError::kAlreadyExists) {
    ctx.err << "error: channel " << ch.id << " or phone_number_id " << ch.phone_number_id
            << " already exists\n";
    return 1;
  }
  return Report(ctx, status, "channel", ch.id);
}

int SetChannelCallbackPermission(const AdminContext& ctx, const std::string& channel_id,
                                 bool enabled) {
  return Report(ctx, ctx.store.SetCallbackPermission(channel_id, enabled), "channel", channel_id);
}

int CreateKey(const AdminContext& ctx, const std::string& account) {
  auto key = GenerateApiKey(account, ctx.now);
  if (!key) {
    ctx.err << "error: the random number generator failed\n";
    return 1;
  }
  const StoreStatus status = ctx.store.AddApiKey(key->record);
  if (!status.ok()) {
    ctx.err << "error: key for account " << account << ": "
            << (status.error() == StoreError::kNotFound ? "no such account"
                                                        : StoreErrorName(status.error()))
            << "\n";
    return 1;
  }
  ctx.out << key->plaintext << "\n";
  return 0;
}

int ListKeys(const AdminContext& ctx, const std::string& account) {
  auto tenants = ctx.store.LoadTenants();
  if (!tenants) {
    ctx.err << "error: " << StoreErrorName(tenants.error()) << "\n";
    return 1;
  }
  if (!tenants->accounts.contains(account)) {
    ctx.err << "error: account " << account << " does not exist\n";
    return 1;
  }
  std::vector<const ApiKey*> keys;
  for (const auto& [id, key] : tenants->api_keys) {
    if (key.account_id == account) keys.push_back(&key);
  }
  std::sort(keys.begin(), keys.end(),
            [](auto* a, auto* b) { return a->created_at < b->created_at; });
  for (const ApiKey* key : keys) {
    ctx.out << key->key_id << " created=" << FormatMillis(key->created_at)
            << " status=" << (key->revoked_at ? "revoked" : "active") << "\n";
  }
  return 0;
}

int RevokeKey(const AdminContext& ctx, const std::string& key_id) {
  return Report(ctx, ctx.store.RevokeApiKey(key_id, ctx.now), "key", key_id);
}

int List(const AdminContext& ctx, const std::string& kind) {
  auto tenants = ctx.store.LoadTenants();
  if (!tenants) {
    ctx.err << "error: " << StoreErrorName(tenants.error()) << "\n";
    return 1;
  }
  const bool all = kind == "all";
  if (all || kind == "accounts") {
    for (const Account* a : Sorted(tenants->accounts)) ctx.out << "account " << a->id << "\n";
  }
  if (all || kind == "subaccounts") {
    for (const Subaccount* s : Sorted(tenants->subaccounts)) {
      ctx.out << "subaccount " << s->id << " account=" << s->account_id << "\n";
    }
  }
  if (all || kind == "channels") {
    for (const Channel* c : Sorted(tenants->channels)) {
      ctx.out << "channel " << c->id << " subaccount=" << c->subaccount_id
              << " phone_number_id=" << c->phone_number_id << " callback_permission="
              << (c->callback_permission_enabled ? "enabled" : "disabled")
              << " limits=" << ProfileName(c->limits) << "\n";
    }
  }
  return 0;
}

namespace {

// The account's target and the snapshot it came from; nullopt after saying why there is none.
std::optional<NotifyTarget> CurrentTarget(const AdminContext& ctx, const std::string& account,
                                          bool must_exist) {
  auto tenants = ctx.store.LoadTenants();
  if (!tenants) {
    ctx.err << "error: " << StoreErrorName(tenants.error()) << "\n";
    return std::nullopt;
  }
  if (!tenants->accounts.contains(account)) {
    ctx.err << "error: account " << account << " does not exist\n";
    return std::nullopt;
  }
  const auto it = tenants->notify_targets.find(account);
  if (it == tenants->notify_targets.end()) {
    if (!must_exist) return NotifyTarget{};
    ctx.err << "error: account " << account << " has no notification URL (notify set)\n";
    return std::nullopt;
  }
  return it->second;
}

// Stores `target` and prints its (new) secret alone.
int StoreTarget(const AdminContext& ctx, const std::string& account, const NotifyTarget& target) {
  const StoreStatus status = ctx.store.SetNotifyTarget(account, target);
  if (!status.ok()) {
    ctx.err << "error: notify for account " << account << ": " << StoreErrorName(status.error())
            << "\n";
    return 1;
  }
  ctx.out << target.secret << "\n";
  return 0;
}

}  // namespace

bool ValidNotifyUrl(std::string_view url) {
  if (url.size() > 2048) return false;
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  // No credentials in the URL: it is shown by `notify show`, and the signature authenticates.
  if (authority.empty() || authority.front() == ':' || authority.find('@') != authority.npos) {
    return false;
  }
  return std::none_of(url.begin(), url.end(),
                      [](unsigned char c) { return c <= ' ' || c >= 0x7f; });
}

int SetNotify(const AdminContext& ctx, const std::string& account, const std::string& url) {
  if (!ValidNotifyUrl(url)) {
    ctx.err << "error: --url must be an http:// or https:// URL with a host and no credentials\n";
    return 2;
  }
  if (!CurrentTarget(ctx, account, /*must_exist=*/false)) return 1;
  auto secret = GenerateSigningSecret();
  if (!secret) {
    ctx.err << "error: the random number generator failed\n";
    return 1;
  }
  return StoreTarget(ctx, account, {url, *secret, "", std::nullopt, ctx.now});
}

int ShowNotify(const AdminContext& ctx, const std::string& account) {
  auto target = CurrentTarget(ctx, account, /*must_exist=*/false);
  if (!target) return 1;
  if (target->url.empty()) {
    ctx.out << "account " << account << " notifications=off\n";
    return 0;
  }
  ctx.out << "account " << account << " notifications=on url=" << target->url
          << " updated=" << FormatMillis(target->updated_at);
  if (target->SigningSecrets(ctx.now).size() > 1) {
    ctx.out << " previous_secret_until=" << FormatMillis(*target->previous_until);
  }
  ctx.out << "\n";
  return 0;
}

int RotateNotifySecret(const AdminContext& ctx, const std::string& account) {
  auto target = CurrentTarget(ctx, account, /*must_exist=*/true);
  if (!target) return 1;
  auto secret = GenerateSigningSecret();
  if (!secret) {
    ctx.err << "error: the random number generator failed\n";
    return 1;
  }
  target->previous_secret = std::move(target->secret);
  target->previous_until = ctx.now + kSecretOverlap;
  target->secret = std::move(*secret);
  target->updated_at = ctx.now;
  return StoreTarget(ctx, account, *target);
}

int ClearNotify(const AdminContext& ctx, const std::string& account) {
  if (!CurrentTarget(ctx, account, /*must_exist=*/false)) return 1;
  return Report(ctx, ctx.store.SetNotifyTarget(account, std::nullopt), "account", account);
}

std::optional<std::string> EnsureDemoTenant(const AdminContext& ctx) {
  const std::string account(kDemoAccount);
  auto created = [&](StoreStatus status, std::string_view what) {
    if (status.ok() || status.error() == StoreError::kAlreadyExists) return true;
    ctx.err << "error: creating the demo " << what << ": " << StoreErrorName(status.error())
            << "\n";
    return false;
  };
  Channel channel{std::string(kDemoChannel),       std::string(kDemoSubaccount),
                  std::string(kDemoPhoneNumberId), false,
                  LimitsProfile::kProduction,      ctx.now};
  if (!created(ctx.store.CreateAccount({account, ctx.now}), "account") ||
      !created(ctx.store.CreateSubaccount({std::string(kDemoSubaccount), account, ctx.now}),
               "subaccount") ||
      !created(ctx.store.CreateChannel(channel), "channel")) {
    return std::nullopt;
  }
  auto key = GenerateApiKey(account, ctx.now);
  if (!key || !ctx.store.AddApiKey(key->record).ok()) {
    ctx.err << "error: creating a demo API key failed\n";
    return std::nullopt;
  }
  return key->plaintext;
}

}  // namespace callgate

// RedisClusterStore's tenants: every change one script on the {tenants} slot that bumps the
// generation; the snapshot read by one script; the poll that moves TenantChanges() and reports
// what this process has seen; the wait that makes a change read-your-writes for every process.
// Thread-safe: a poll at a time (poll_mu_), scopes_ under scopes_mu_.
#include <charconv>
#include <cstring>
#include <sstream>

#include "store/redis/keys.h"
#include "store/redis/redis_cluster_store.h"
#include "store/redis/reply_util.h"
#include "store/redis/scripts.h"

namespace callgate {

using redis_reply::Integer;
using redis_reply::Text;

namespace {

std::int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t ToInt(std::string_view text) {
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

std::string Hex(const Sha256& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const std::uint8_t b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

bool FromHex(std::string_view hex, Sha256& out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::vector<std::string> KeyList(const redis_keys::TenantKeys& k) {
  return {k.accounts, k.subaccounts, k.channels,   k.phone_numbers, k.callbacks,
          k.api_keys, k.revocations, k.generation, k.notify_targets};
}

// A flat field/value array reply, field by field.
template <class F>
void ForEachField(const redis::Reply& hash, F&& f) {
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    f(hash.elements[i].str, hash.elements[i + 1].str);
  }
}

}  // namespace

// Values (ids are [A-Za-z0-9._-], so a space separates fields): accounts "created";
// subaccounts "account created"; channels "subaccount phone_number_id limits created";
// callbacks "0"/"1"; api keys "account sha256-hex created"; revocations "at".
StoreStatus RedisClusterStore::CreateAccount(const Account& a) {
  return TenantWriteOp({"account", a.id, std::to_string(ToUnixMillis(a.created_at))});
}

StoreStatus RedisClusterStore::CreateSubaccount(const Subaccount& s) {
  return TenantWriteOp({"subaccount", s.id, s.account_id,
                        s.account_id + " " + std::to_string(ToUnixMillis(s.created_at))});
}

StoreStatus RedisClusterStore::CreateChannel(const Channel& c) {
  return TenantWriteOp({"channel", c.id, c.subaccount_id, c.phone_number_id,
                        c.subaccount_id + " " + c.phone_number_id + " " +
                            std::to_string(static_cast<int>(c.limits)) + " " +
                            std::to_string(ToUnixMillis(c.created_at)),
                        c.callback_permission_enabled ? "1" : "0"});
}

StoreStatus RedisClusterStore::SetCallbackPermission(const std::string& channel_id, bool enabled) {
  return TenantWriteOp({"callback", channel_id, enabled ? "1" : "0"});
}

StoreStatus RedisClusterStore::AddApiKey(const ApiKey& key) {
  return TenantWriteOp({"key", key.key_id, key.account_id,
                        key.account_id + " " + Hex(key.secret_hash) + " " +
                            std::to_string(ToUnixMillis(key.created_at))});
}

StoreStatus RedisClusterStore::RevokeApiKey(const std::string& key_id, Instant at) {
  return TenantWriteOp({"revoke", key_id, std::to_string(ToUnixMillis(at))});
}

// A target's value: "url secret previous_secret previous_until updated" ("-" for no previous
// secret or time): URLs and secrets hold no space (admin/admin.h ValidNotifyUrl, base64url).
StoreStatus RedisClusterStore::SetNotifyTarget(const std::string& account_id,
                                               const std::optional<NotifyTarget>& target) {
  std::string value;
  if (target) {
    value = target->url + " " + target->secret + " " +
            (target->previous_secret.empty() ? "-" : target->previous_secret) + " " +
            (target->previous_until ? std::to_string(ToUnixMillis(*target->previous_until)) : "-") +
            " " + std::to_string(ToUnixMillis(target->updated_at));
  }
  return TenantWriteOp({"notify", account_id, std::move(value)});
}

// Commits the change durably, then waits (bounded) until every live process has seen its
// generation: what makes an admin command read-your-writes across processes.
StoreStatus RedisClusterStore::TenantWriteOp(std::vector<std::string> args) {
  const redis_keys::TenantKeys keys = redis_keys::TenantKeysOf(options_.key_prefix);
  auto result = client_->RunScriptSync(redis_scripts::TenantWrite(), KeyList(keys), std::move(args),
                                       redis::Durability::kReplica);
  if (!result) return StoreError::kUnavailable;
  switch (Integer(*result, 0)) {
    case 0:
      break;
    case 1:
      return StoreError::kNotFound;
    case 2:
      return StoreError::kAlreadyExists;
    default:
      return StoreError::kInvalid;
  }
  const std::uint64_t generation = static_cast<std::uint64_t>(Integer(*result, 1));
  // This process first: its scopes and counter, before the change's call returns.
  {
    std::lock_guard lock(poll_mu_);
    (void)PollOnce();
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.propagation_timeout;
  int lagging = 0;
  for (;;) {
    auto seen = client_->RunSync(keys.seen, {"HGETALL", keys.seen}, redis::Durability::kNone);
    if (!seen) return Ok{};  // committed; nobody can be asked
    const std::int64_t now = WallMillis();
    lagging = 0;
    ForEachField(*seen, [&](const std::string& process, const std::string& value) {
      if (process == process_id_) return;
      const std::vector<std::string> parts = Words(value);
      if (parts.size() != 2) return;
      const std::int64_t heartbeat = ToInt(parts[1]);
      if (now - heartbeat > std::chrono::hours(1) / std::chrono::milliseconds(1)) {
        (void)client_->RunSync(keys.seen, {"HDEL", keys.seen, process}, redis::Durability::kNone);
        return;
      }
      if (now - heartbeat > options_.heartbeat_freshness.count()) return;  // gone
      if (static_cast<std::uint64_t>(ToInt(parts[0])) < generation) ++lagging;
    });
    if (lagging == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  last_lagging_ = lagging;
  if (lagging > 0) {
    options_.warn("tenant change (generation " + std::to_string(generation) + ") not yet seen by " +
                  std::to_string(lagging) + " live callgate process(es) after " +
                  std::to_string(options_.propagation_timeout.count()) + " ms");
  }
  return Ok{};
}

StoreResult<std::uint64_t> RedisClusterStore::TenantGeneration() {
  const std::string gen = redis_keys::TenantKeysOf(options_.key_prefix).generation;
  auto result = client_->RunSync(gen, {"GET", gen}, redis::Durability::kNone);
  if (!result) return StoreError::kUnavailable;
  return static_cast<std::uint64_t>(result->is_nil() ? 0 : ToInt(result->str));
}

// One memory load while the poll is fresh; a process whose poll fell behind the heartbeat window
// (writers no longer wait for it) polls inline first, so it never answers on tenants older than
// a change that has returned.
std::uint64_t RedisClusterStore::TenantChanges() {
  const std::int64_t age = SteadyMillis() - last_poll_ms_.load(std::memory_order_relaxed);
  if (age > options_.heartbeat_freshness.count() / 2) {
    std::unique_lock lock(poll_mu_, std::try_to_lock);
    if (lock.owns_lock()) (void)PollOnce();
  }
  return tenant_changes_.load(std::memory_order_acquire);
}

StoreResult<TenantSnapshot> RedisClusterStore::LoadTenants() {
  const redis_keys::TenantKeys keys = redis_keys::TenantKeysOf(options_.key_prefix);
  auto result = client_->RunScriptSync(redis_scripts::LoadTenants(), KeyList(keys), {},
                                       redis::Durability::kNone);
  if (!result) return StoreError::kUnavailable;
  const redis::Reply& r = *result;
  if (r.elements.size() != 8) return StoreError::kInvalid;
  TenantSnapshot snap;
  ForEachField(r.elements[1], [&](const std::string& id, const std::string& v) {
    snap.accounts.emplace(id, Account{id, FromUnixMillis(ToInt(v))});
  });
  ForEachField(r.elements[2], [&](const std::string& id, const std::string& v) {
    const auto w = Words(v);
    if (w.size() == 2)
      snap.subaccounts.emplace(id, Subaccount{id, w[0], FromUnixMillis(ToInt(w[1]))});
  });
  std::unordered_map<std::string, bool> callbacks;
  ForEachField(r.elements[4],
               [&](const std::string& id, const std::string& v) { callbacks[id] = v == "1"; });
  ForEachField(r.elements[3], [&](const std::string& id, const std::string& v) {
    const auto w = Words(v);
    if (w.size() != 4) return;
    Channel ch{id,
               w[0],
               w[1],
               callbacks[id],
               ToInt(w[2]) == static_cast<int>(LimitsProfile::kSandbox)
                   ? LimitsProfile::kSandbox
                   : LimitsProfile::kProduction,
               FromUnixMillis(ToInt(w[3]))};
    snap.channel_by_phone_number_id.emplace(ch.phone_number_id, id);
    snap.channels.emplace(id, std::move(ch));
  });
  std::unordered_map<std::string, std::int64_t> revoked;
  ForEachField(r.elements[6],
               [&](const std::string& id, const std::string& v) { revoked[id] = ToInt(v); });
  ForEachField(r.elements[5], [&](const std::string& id, const std::string& v) {
    const auto w = Words(v);
    ApiKey key;
    key.key_id = id;
    if (w.size() != 3 || !FromHex(w[1], key.secret_hash)) return;  // unreadable: never matches
    key.account_id = w[0];
    key.created_at = FromUnixMillis(ToInt(w[2]));
    if (const auto it = revoked.find(id); it != revoked.end()) {
      key.revoked_at = FromUnixMillis(it->second);
    }
    snap.api_keys.emplace(id, std::move(key));
  });
  ForEachField(r.elements[7], [&](const std::string& id, const std::string& v) {
    const auto w = Words(v);
    if (w.size() != 5) return;
    NotifyTarget target{w[0], w[1], w[2] == "-" ? "" : w[2], std::nullopt,
                        FromUnixMillis(ToInt(w[4]))};
    if (w[3] != "-") target.previous_until = FromUnixMillis(ToInt(w[3]));
    snap.notify_targets.emplace(id, std::move(target));
  });
  return snap;
}

void RedisClusterStore::InstallScopes(const TenantSnapshot& snapshot) {
  std::lock_guard lock(scopes_mu_);
  for (const auto& [id, channel] : snapshot.channels) {
    const Subaccount* sub = snapshot.FindSubaccount(channel.subaccount_id);
    if (sub) scopes_[id] = {sub->account_id, channel.limits};
  }
}

// Reads the generation; if it moved, reloads the channels' scopes and moves the local counter;
// then records what this process has seen, with a heartbeat. Caller holds poll_mu_.
bool RedisClusterStore::PollOnce() {
  const redis_keys::TenantKeys keys = redis_keys::TenantKeysOf(options_.key_prefix);
  auto gen = client_->RunSync(keys.generation, {"GET", keys.generation}, redis::Durability::kNone);
  if (!gen) return false;
  const auto generation = static_cast<std::uint64_t>(gen->is_nil() ? 0 : ToInt(gen->str));
  std::uint64_t seen = tenant_changes_.load(std::memory_order_acquire);
  if (generation > seen || last_poll_ms_.load() == 0) {
    auto snapshot = LoadTenants();
    if (!snapshot) return false;
    InstallScopes(*snapshot);
    seen = std::max(seen, generation);
    tenant_changes_.store(seen, std::memory_order_release);
  }
  last_poll_ms_.store(SteadyMillis(), std::memory_order_relaxed);
  if (options_.report_seen) {
    (void)client_->RunSync(
        keys.seen,
        {"HSET", keys.seen, process_id_, std::to_string(seen) + " " + std::to_string(WallMillis())},
        redis::Durability::kNone);
  }
  return true;
}

void RedisClusterStore::PollLoop() {
  std::unique_lock stop(stop_mu_);
  while (!stop_cv_.wait_for(stop, options_.tenant_poll_interval, [this] { return stopping_; })) {
    stop.unlock();
    {
      std::lock_guard lock(poll_mu_);
      (void)PollOnce();
    }
    stop.lock();
  }
}

}  // namespace callgate

// RedisClusterStore's user links: the three-step protocol described in redis_cluster_store.h
// (BeginLink on the scope's link map; per channel, a version-checked fold into the canonical
// pair and tombstones for the aliases; EndLink). Runs on the store's link thread (and inline in
// a read that finds a link pending), with blocking commands: never on the client's I/O thread.
#include <sstream>

#include "store/codec.h"
#include "store/redis/keys.h"
#include "store/redis/redis_cluster_store.h"
#include "store/redis/reply_util.h"
#include "store/redis/scripts.h"

namespace callgate {

using redis_reply::Integer;
using redis_reply::Text;

namespace {

constexpr std::int64_t kSeqEpochMicros = 1'735'689'600'000'000;

std::int64_t NowMicrosSinceSeqEpoch() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() -
         kSeqEpochMicros;
}

// One pair as a merge reads it: everything, with the token it was read at.
struct Dump {
  std::string token, state, tombstone;
  std::vector<HistoryEntry> history;
  std::vector<std::pair<std::string, std::string>> records;  // key, packed value
  bool HasData() const { return !token.empty() && tombstone.empty(); }
};

}  // namespace

void RedisClusterStore::LinkUser(UserLink link, UpdateDone done) {
  std::vector<std::string> ids;
  for (const UserId& id : link.ids) ids.push_back(id.text());
  {
    std::lock_guard lock(link_mu_);
    if (!link_stopping_) {
      link_jobs_.push_back({"", std::move(ids), "", {link.channel_id}, std::move(done)});
      link_cv_.notify_one();
      return;
    }
  }
  done(StoreError::kUnavailable);
}

void RedisClusterStore::PostCompletion(const std::string& channel_id,
                                       const std::string& canonical) {
  std::lock_guard lock(link_mu_);
  if (link_stopping_) return;  // a hint: the next reader completes it
  if (!pending_completions_.insert(channel_id + '\x1f' + canonical).second) return;
  link_jobs_.push_back({"", {}, canonical, {channel_id}, nullptr});
  link_cv_.notify_one();
}

void RedisClusterStore::LinkLoop() {
  for (;;) {
    LinkJob job;
    {
      std::unique_lock lock(link_mu_);
      link_cv_.wait(lock, [this] { return link_stopping_ || !link_jobs_.empty(); });
      if (link_jobs_.empty()) return;  // stopping, and every job is done
      job = std::move(link_jobs_.front());
      link_jobs_.pop_front();
    }
    if (job.work) {
      job.work();
      continue;
    }
    const std::string& channel = job.channels.front();
    StoreStatus status =
        job.ids.empty() ? CompleteLink(channel, job.canonical) : RunLink(channel, job.ids);
    if (job.ids.empty()) {
      std::lock_guard lock(link_mu_);
      pending_completions_.erase(channel + '\x1f' + job.canonical);
    }
    if (job.done) job.done(status);
  }
}

StoreStatus RedisClusterStore::BeginLinkOnly(const UserLink& link) {
  std::vector<std::string> ids;
  for (const UserId& id : link.ids) ids.push_back(id.text());
  const std::string links = redis_keys::LinksKey(options_.key_prefix, ScopeOf(link.channel_id));
  auto begun = client_->RunScriptSync(redis_scripts::BeginLink(), {links}, std::move(ids),
                                      redis::Durability::kReplica);
  if (!begun) return StoreError::kUnavailable;
  return Ok{};
}

StoreStatus RedisClusterStore::RunLink(const std::string& channel_id,
                                       const std::vector<std::string>& ids) {
  const std::string links = redis_keys::LinksKey(options_.key_prefix, ScopeOf(channel_id));
  auto begun =
      client_->RunScriptSync(redis_scripts::BeginLink(), {links}, ids, redis::Durability::kReplica);
  if (!begun) return StoreError::kUnavailable;
  if (Text(*begun, 1) == "0") return Ok{};  // every id already resolves to the canonical one
  return CompleteLink(channel_id, Text(*begun, 0));
}

std::vector<std::pair<std::string, LimitsProfile>> RedisClusterStore::ChannelsOfScope(
    const std::string& channel_id) {
  std::vector<std::pair<std::string, LimitsProfile>> out;
  std::lock_guard lock(scopes_mu_);
  const auto it = scopes_.find(channel_id);
  if (it == scopes_.end()) return {{channel_id, LimitsProfile{}}};  // a scope of its own
  for (const auto& [id, scope] : scopes_) {
    if (scope.first == it->second.first) out.emplace_back(id, scope.second);
  }
  return out;
}

// Steps 2 and 3 for the user whose canonical id is (or was) `canonical`: idempotent, so any
// process may run it again, whole or after a crash in the middle.
StoreStatus RedisClusterStore::CompleteLink(const std::string& channel_id, std::string canonical) {
  const std::string links = redis_keys::LinksKey(options_.key_prefix, ScopeOf(channel_id));
  std::vector<std::string> aliases;
  for (int hops = 0;; ++hops) {
    if (hops > 8) return StoreError::kUnavailable;
    auto up = client_->RunSync(links, {"HGET", links, "a:" + canonical}, redis::Durability::kNone);
    if (!up) return StoreError::kUnavailable;
    if (up->type == redis::Reply::Type::kString) {
      // A later link made it an alias in turn: complete that one, which takes this group in.
      canonical = up->str.starts_with('!') ? up->str.substr(1) : up->str;
      continue;
    }
    auto members =
        client_->RunSync(links, {"HGET", links, "m:" + canonical}, redis::Durability::kNone);
    if (!members) return StoreError::kUnavailable;
    std::istringstream in(members->type == redis::Reply::Type::kString ? members->str : "");
    for (std::string alias; in >> alias;) aliases.push_back(alias);
    break;
  }
  for (const auto& [channel, limits] : ChannelsOfScope(channel_id)) {
    if (auto status = MergeChannel(channel, limits, canonical, aliases); !status.ok()) {
      return status;
    }
  }
  std::vector<std::string> args = {canonical};
  args.insert(args.end(), aliases.begin(), aliases.end());
  auto ended =
      client_->RunScriptSync(redis_scripts::EndLink(), {links}, args, redis::Durability::kReplica);
  if (!ended) return StoreError::kUnavailable;
  return Ok{};
}

// On one channel: folds the pairs held under `aliases` into the canonical pair, then makes every
// alias pair a tombstone; each write checks the token its read saw, and a conflict starts the
// channel over (folding again is exact: entries are keyed by event).
StoreStatus RedisClusterStore::MergeChannel(const std::string& channel_id, LimitsProfile limits,
                                            const std::string& canonical,
                                            const std::vector<std::string>& aliases) {
  auto dump = [&](const std::string& user) -> StoreResult<Dump> {
    const redis_keys::PairKeys keys =
        redis_keys::KeysOf(options_.key_prefix, {channel_id, UserId::FromText(user)});
    auto read =
        client_->RunScriptSync(redis_scripts::ReadPair(), {keys.pair, keys.history, keys.records},
                               {"a", ""}, redis::Durability::kNone);
    if (!read) return StoreError::kUnavailable;
    Dump out{Text(*read, 0), Text(*read, 1), Text(*read, 2), {}, {}};
    if (read->elements.size() > 5) {
      const auto& history = read->elements[4].elements;
      for (std::size_t i = 0; i + 1 < history.size(); i += 2) {
        auto entry = redis_keys::DecodeHistory(history[i].str, history[i + 1].str);
        if (!entry) return StoreError::kInvalid;
        out.history.push_back(std::move(*entry));
      }
      const auto& records = read->elements[5].elements;
      for (std::size_t i = 0; i + 1 < records.size(); i += 2) {
        out.records.emplace_back(records[i].str, records[i + 1].str);
      }
    }
    return out;
  };
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto target = dump(canonical);
    if (!target) return target.error();
    if (!target->tombstone.empty()) return Ok{};  // merged further by a later link's completion
    std::vector<Dump> held;
    held.reserve(aliases.size());
    bool any_data = false;
    for (const std::string& alias : aliases) {
      auto d = dump(alias);
      if (!d) return d.error();
      any_data = any_data || d->HasData();
      held.push_back(std::move(*d));
    }
    bool conflict = false;
    if (any_data) {
      std::vector<HistoryEntry> entries = target->history;
      std::vector<std::string> records_args;
      int records = 0;
      for (Dump& d : held) {
        if (!d.HasData()) continue;
        entries.insert(entries.end(), d.history.begin(), d.history.end());
        for (auto& [key, value] : d.records) {
          records_args.push_back(key);
          records_args.push_back(value);
          ++records;
        }
      }
      FoldedPair folded = FoldHistories(std::move(entries), limits);
      const redis_keys::PairKeys keys =
          redis_keys::KeysOf(options_.key_prefix, {channel_id, UserId::FromText(canonical)});
      std::vector<std::string> args = {target->token,
                                       NewToken(),
                                       EncodePairState(folded.state),
                                       std::to_string(NowMicrosSinceSeqEpoch()),
                                       std::to_string(kIdempotencyRetention.count()),
                                       std::to_string(records)};
      args.insert(args.end(), records_args.begin(), records_args.end());
      for (const HistoryEntry& entry : folded.history) {
        args.push_back(EncodeEventKey(entry.event));
        args.push_back(std::to_string(ToUnixMillis(EventTime(entry.event))));
        args.push_back(entry.seq != 0 ? std::to_string(entry.seq) : std::string());
        args.push_back(redis_keys::HistoryRest(entry));
      }
      auto replaced = client_->RunScriptSync(redis_scripts::ReplacePair(),
                                             {keys.pair, keys.history, keys.records},
                                             std::move(args), redis::Durability::kReplica);
      if (!replaced) return StoreError::kUnavailable;
      conflict = Integer(*replaced, 0) != 1;
    }
    for (std::size_t i = 0; i < aliases.size() && !conflict; ++i) {
      if (held[i].tombstone == canonical) continue;  // already points at it
      const redis_keys::PairKeys keys =
          redis_keys::KeysOf(options_.key_prefix, {channel_id, UserId::FromText(aliases[i])});
      auto buried = client_->RunScriptSync(
          redis_scripts::TombstonePair(), {keys.pair, keys.history, keys.records},
          {held[i].token, NewToken(), canonical}, redis::Durability::kReplica);
      if (!buried) return StoreError::kUnavailable;
      conflict = Integer(*buried, 0) != 1;
    }
    if (!conflict) return Ok{};
    conflicts_.fetch_add(1, std::memory_order_relaxed);
  }
  return StoreError::kUnavailable;
}

}  // namespace callgate

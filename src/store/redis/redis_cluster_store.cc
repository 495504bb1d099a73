// RedisClusterStore's life cycle, pair updates (the per-pair queue and the version-checked commit)
// and pair reads; links (links.cc) and tenants (tenants.cc) live beside it. Thread-safe: slots_
// is guarded by mu_; an operation in flight is touched by one thread at a time (its slot's queue
// runs one operation at once).
#include "store/redis/redis_cluster_store.h"

#include <algorithm>
#include <cstdio>

#include "store/codec.h"
#include "store/redis/keys.h"
#include "store/redis/reply_util.h"
#include "store/redis/scripts.h"

namespace callgate {

using redis_reply::Integer;
using redis_reply::Pending;
using redis_reply::Text;

namespace {

// History seqs count µs from 2025-01-01, as SqliteStore's do: increasing per pair (the script
// keeps them above the pair's last one) and across pairs roughly in time order, so a merge can
// keep every entry's seq.
constexpr std::int64_t kSeqEpochMicros = 1'735'689'600'000'000;
constexpr std::size_t kMaxIdleSlots = 65536;  // cached pair hints kept between operations
constexpr int kMaxHops = 8;                   // tombstones and links followed by one read

std::int64_t NowMicrosSinceSeqEpoch() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() -
         kSeqEpochMicros;
}

std::int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string SlotKey(const PairKey& key) { return key.channel_id + '\x1f' + key.user.text(); }

// A pair's state as read, and its encoding as a slot keeps it (Slot::encoded).
struct StoredState {
  PairState state;
  std::string encoded;
};
// `bytes`: the stored state ("" for none: the pair does not exist or holds nothing yet). Nullopt
// if they are not a state.
std::optional<StoredState> ReadStoredState(const std::string& bytes) {
  if (bytes.empty()) {
    static const std::string empty = EncodePairState(PairState{});
    return StoredState{PairState{}, empty};
  }
  std::optional<PairState> state = DecodePairState(bytes);
  if (!state) return std::nullopt;
  return StoredState{std::move(*state), bytes};
}

redis::Reply Bulk(std::string text) {
  redis::Reply reply;
  reply.type = redis::Reply::Type::kString;
  reply.str = std::move(text);
  return reply;
}

// ReadPair's {token, state, tombstone, record} from a GET of the pair key and an HGET of the
// record (nil when absent), reading the layout the scripts write (scripts.cc, kPairCodec):
// "D" token(8) seq(7) horizon(6) state, or "T" token(8) canonical id. An unreadable value is a
// failure (the store answers unavailable), never an absent pair.
redis::CommandResult PairReply(redis::CommandResult value, const redis::CommandResult& record) {
  if (!value) return value;
  if (!record) return record;
  constexpr std::size_t kToken = 8, kData = 1 + kToken + 7 + 6;
  std::string token, state, tombstone;
  if (value->type == redis::Reply::Type::kString) {
    std::string& raw = value->str;
    if (raw.size() >= 1 + kToken && raw[0] == 'T') {
      token = raw.substr(1, kToken);
      tombstone = raw.substr(1 + kToken);
    } else if (raw.size() >= kData && raw[0] == 'D') {
      token = raw.substr(1, kToken);
      state = std::move(raw);  // the state is most of the value: kept in place, not copied
      state.erase(0, kData);
    } else {
      return redis::Failure{redis::FailureKind::kServerError, "unreadable pair value"};
    }
  } else if (!value->is_nil()) {
    return redis::Failure{redis::FailureKind::kServerError, "unexpected reply to GET"};
  }
  redis::Reply out;
  out.type = redis::Reply::Type::kArray;
  out.elements.reserve(4);
  out.elements.push_back(Bulk(std::move(token)));
  out.elements.push_back(Bulk(std::move(state)));
  out.elements.push_back(Bulk(std::move(tombstone)));
  out.elements.push_back(
      Bulk(record->type == redis::Reply::Type::kString ? record->str : std::string()));
  return out;
}

}  // namespace

void RedisClusterStore::ReadPairKeys(const PairKey& target, const char* mode,
                                     const std::string& record_key, redis::CommandDone done) {
  if (mode[0] != 's') {
    redis_keys::PairKeys keys = redis_keys::KeysOf(options_.key_prefix, target);
    client_->RunScript(redis_scripts::ReadPair(),
                       {std::move(keys.pair), std::move(keys.history), std::move(keys.records)},
                       {mode, record_key}, redis::Durability::kNone, std::move(done));
    return;
  }
  // Plain commands, not the script: on Redis, a script call costs about 10 GETs of CPU (measured
  // with INFO commandstats), and the status read is the hottest path there is — it also builds
  // only the one key it reads. Not one snapshot, and need not be: a read answers one key's value,
  // and a write's commit checks the token and the record it saw in one script.
  const std::string base = redis_keys::KeyBase(options_.key_prefix, target);
  const std::string pair = base + "p";
  static const redis::CommandResult kNil = redis::Reply{};
  if (record_key.empty()) {
    client_->Run(pair, {"GET", pair}, redis::Durability::kNone,
                 [done = std::move(done)](redis::CommandResult value) {
                   done(PairReply(std::move(value), kNil));
                 });
    return;
  }
  struct Join {
    std::atomic<int> remaining{2};
    redis::CommandResult value = redis::Reply{}, record = redis::Reply{};
    redis::CommandDone done;
  };
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  auto arrive = [join](bool is_value) {
    return [join, is_value](redis::CommandResult result) {
      (is_value ? join->value : join->record) = std::move(result);
      if (join->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      join->done(PairReply(std::move(join->value), join->record));
    };
  };
  const std::string records = base + "i";
  client_->Run(pair, {"GET", pair}, redis::Durability::kNone, arrive(true));
  client_->Run(records, {"HGET", records, record_key}, redis::Durability::kNone, arrive(false));
}

// One queued update.
struct RedisClusterStore::Op {
  PairKey key;  // as the caller named it
  std::string idempotency_key;
  IdempotentMutation mutation;
  UpdateDone done;
  int attempts = 0;
  // Who claims the pair after losing a commit: per operation, since two queues of one process
  // (one id and an alias of it) may contend for one pair too.
  std::string claimant;
};

// The queue of one pair (as named by its caller) and what its last operation learnt: the pair it
// resolved to, and the token and state there. Only a hint: every commit checks the token.
struct RedisClusterStore::Slot {
  std::deque<std::shared_ptr<Op>> ops;  // the front one runs
  bool running = false;
  bool known = false;
  std::optional<PairKey> resolved;
  std::string token;  // "" when the pair did not exist
  PairState state;
  // `state`'s encoding: as stored (or the empty state's, when the pair holds none). An attempt
  // compares its mutation's encoding with it to see whether the state changed; a state stored by
  // an older layout than EncodePairState writes thus looks changed once, and is written anew.
  std::string encoded;
};

struct RedisClusterStore::Resolved {
  PairKey key;
  std::string token;
  PairState state;
  std::vector<HistoryEntry> history;  // mode "h"
};

RedisClusterStore::RedisClusterStore(RedisStoreOptions options)
    : options_(std::move(options)), rng_(std::random_device{}()) {
  if (!options_.warn) {
    options_.warn = [](const std::string& line) {
      std::fprintf(stderr, "callgate: %s\n", line.c_str());
    };
  }
}

Result<std::unique_ptr<RedisClusterStore>, std::string> RedisClusterStore::Open(
    RedisStoreOptions options) {
  redis::ClientOptions client_options;
  client_options.seeds = options.seeds;
  client_options.command_timeout = options.command_timeout;
  client_options.replica_timeout = options.replica_timeout;
  client_options.completion_scope = options.completion_scope;
  auto client = redis::ClusterClient::Connect(std::move(client_options));
  if (!client) return client.error();
  std::unique_ptr<RedisClusterStore> store(new RedisClusterStore(std::move(options)));
  store->client_ = std::move(*client);
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : store->NewToken()) {
    store->process_id_ += kHex[(c >> 4) & 0xf];
    store->process_id_ += kHex[c & 0xf];
  }
  if (!store->PollOnce()) return std::string("cannot read the tenants from the Redis cluster");
  store->poller_ = std::thread([s = store.get()] { s->PollLoop(); });
  store->linker_ = std::thread([s = store.get()] { s->LinkLoop(); });
  store->timer_ = std::thread([s = store.get()] { s->TimerLoop(); });
  return store;
}

RedisClusterStore::~RedisClusterStore() {
  {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [this] {
      return in_flight_ == 0 && reads_in_flight_.load(std::memory_order_acquire) == 0;
    });
  }
  {
    std::lock_guard lock(timer_mu_);
    timer_stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  {
    std::lock_guard lock(link_mu_);
    link_stopping_ = true;
  }
  link_cv_.notify_all();
  if (linker_.joinable()) linker_.join();
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  if (client_ && options_.report_seen) {
    // Gone: writers of tenant changes need not wait for this process.
    (void)client_->RunSync(
        redis_keys::TenantKeysOf(options_.key_prefix).seen,
        {"HDEL", redis_keys::TenantKeysOf(options_.key_prefix).seen, process_id_},
        redis::Durability::kNone);
  }
  client_.reset();  // its I/O thread ends: no callback runs after this
}

std::string RedisClusterStore::NewToken() {
  std::lock_guard lock(rng_mu_);
  const std::uint64_t bits = rng_();
  std::string token(8, '\0');
  for (int i = 0; i < 8; ++i) token[i] = static_cast<char>(bits >> (8 * i));
  return token;
}

std::string RedisClusterStore::ScopeOf(const std::string& channel_id) {
  std::lock_guard lock(scopes_mu_);
  const auto it = scopes_.find(channel_id);
  return it == scopes_.end() ? "#" + channel_id : it->second.first;
}

LimitsProfile RedisClusterStore::LimitsOf(const std::string& channel_id) {
  std::lock_guard lock(scopes_mu_);
  const auto it = scopes_.find(channel_id);
  return it == scopes_.end() ? LimitsProfile{} : it->second.second;
}

StoreStatus RedisClusterStore::ProbeWrite() {
  const std::string probe = redis_keys::TenantKeysOf(options_.key_prefix).probe;
  auto result = client_->RunSync(probe, {"SET", probe, std::to_string(WallMillis())},
                                 redis::Durability::kReplica);
  if (!result) return StoreError::kUnavailable;
  return Ok{};
}

// --- Updates ---------------------------------------------------------------------------------

void RedisClusterStore::UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                                         IdempotentMutation mutation, UpdateDone done) {
  auto op = std::make_shared<Op>(
      Op{key, std::move(idempotency_key), std::move(mutation), std::move(done), 0,
         process_id_ + ":" + std::to_string(next_op_.fetch_add(1, std::memory_order_relaxed))});
  const std::string slot_key = SlotKey(key);
  {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[slot_key];
    slot.ops.push_back(std::move(op));
    if (slot.running) return;  // runs when the ones before it are done
    slot.running = true;
    ++in_flight_;
  }
  Start(slot_key);
}

void RedisClusterStore::Start(const std::string& slot_key) {
  std::shared_ptr<Op> op;
  bool known;
  {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[slot_key];
    op = slot.ops.front();
    known = slot.known;
  }
  if (known) return Attempt(slot_key, std::move(op), std::string(), /*fresh=*/false);
  PairKey target = op->key;
  Load(slot_key, std::move(op), std::move(target), 0);
}

// Reads `target` (its token, state, tombstone and the op's record) and, in parallel, the link of
// its id: one round trip. Follows a tombstone, or the link of an id without a pair of its own.
void RedisClusterStore::Load(const std::string& slot_key, std::shared_ptr<Op> op, PairKey target,
                             int hops) {
  struct Join {
    std::mutex mu;
    int remaining = 2;
    std::optional<redis::CommandResult> pair, link;
  };
  auto join = std::make_shared<Join>();
  auto arrive = [this, slot_key, op, target, hops, join]() {
    // Both replies are in.
    if (!join->pair->ok() || !join->link->ok())
      return Finish(slot_key, op, StoreError::kUnavailable, true);
    const redis::Reply& pair = join->pair->value();
    const redis::Reply& link = join->link->value();
    std::string linked = link.type == redis::Reply::Type::kString ? link.str : std::string();
    if (linked.starts_with('!')) {
      linked.erase(0, 1);
      PostCompletion(target.channel_id, linked);  // a link was interrupted: finish it
    }
    const std::string& token = Text(pair, 0);
    const std::string& tombstone = Text(pair, 2);
    std::optional<PairKey> next;
    if (!tombstone.empty()) {
      next = PairKey{target.channel_id, UserId::FromText(tombstone)};
    } else if (token.empty() && !linked.empty() && linked != target.user.text()) {
      next = PairKey{target.channel_id, UserId::FromText(linked)};
    }
    if (next) {
      if (hops >= kMaxHops) return Finish(slot_key, op, StoreError::kUnavailable, true);
      return Load(slot_key, op, std::move(*next), hops + 1);
    }
    std::optional<StoredState> stored = ReadStoredState(token.empty() ? "" : Text(pair, 1));
    if (!stored) return Finish(slot_key, op, StoreError::kInvalid, true);
    {
      std::lock_guard lock(mu_);
      Slot& slot = slots_[slot_key];
      slot.known = true;
      slot.resolved = target;
      slot.token = token;
      slot.state = std::move(stored->state);
      slot.encoded = std::move(stored->encoded);
    }
    Attempt(slot_key, op, Text(pair, 3), /*fresh=*/true);
  };
  auto collect = [join, arrive](bool is_pair) {
    return [join, arrive, is_pair](redis::CommandResult result) {
      bool last;
      {
        std::lock_guard lock(join->mu);
        (is_pair ? join->pair : join->link) = std::move(result);
        last = --join->remaining == 0;
      }
      if (last) arrive();
    };
  };
  const std::string links = redis_keys::LinksKey(options_.key_prefix, ScopeOf(target.channel_id));
  ReadPairKeys(target, "s", op->idempotency_key, collect(true));
  client_->Run(links, {"HGET", links, "a:" + target.user.text()}, redis::Durability::kNone,
               collect(false));
}

// Runs the mutation on the slot's state and commits what it changed. `seen_record`: the op's
// record as read with that state ("" for none, or not read: the script checks it either way).
// `fresh`: the state was just read, so a refusal needs no check.
void RedisClusterStore::Attempt(const std::string& slot_key, std::shared_ptr<Op> op,
                                std::string seen_record, bool fresh) {
  // The mutation runs on the slot's state in place: only the slot's running operation (this one)
  // touches it, and a running slot is never erased. (Copying the state for each attempt, and
  // freeing the one it replaced, was ~18 % of callgate's CPU per write: a state holding a day's
  // authorisations is dozens of map nodes.) Whether it changed, the encodings tell: the commit
  // needs the new one anyway. What is not committed does not stay: a refusal restores the state
  // from its encoding, and a failed commit makes the slot forget it (Finish), so the next
  // operation reads the pair again; a conflict replaces it (OnConflict).
  Slot* slot_ptr;
  {
    std::lock_guard lock(mu_);
    slot_ptr = &slots_[slot_key];
  }
  PairState& state = slot_ptr->state;
  const std::string token = slot_ptr->token;
  const std::optional<PairKey> target = slot_ptr->resolved;
  std::optional<IdempotencyRecord> found;
  if (!op->idempotency_key.empty() && !seen_record.empty()) {
    found = redis_keys::UnpackRecord(seen_record);
    if (!found) return Finish(slot_key, op, StoreError::kInvalid, true);
  }
  // Only a notifier compares the state before the change with the one after: the one copy left,
  // and only for a pair that may notify.
  std::shared_ptr<const Notifier> notifier = notifier_.Get();
  if (notifier && !notifier->MayNotify(*target)) notifier.reset();
  std::optional<PairState> before;
  if (notifier) before = state;
  std::vector<HistoryEntry> history;
  std::optional<IdempotencyRecord> record = found;
  const bool write = op->mutation(state, history, record);
  std::string encoded;
  if (write) {
    encoded = EncodePairState(state);
  } else {
    std::optional<PairState> restored = DecodePairState(slot_ptr->encoded);
    if (!restored) return Finish(slot_key, op, StoreError::kInvalid, true);
    state = std::move(*restored);
  }
  const bool state_changed = write && encoded != slot_ptr->encoded;
  const bool new_record = write && !op->idempotency_key.empty() && record && record != found;
  const bool changed = state_changed || (write && (!history.empty() || new_record));
  if (changed) {
    for (const HistoryEntry& entry : history) {
      // Stored under the key derived from the event, so an entry must carry that key.
      if (entry.event_key != EventKey(entry.event)) {
        return Finish(slot_key, op, StoreError::kInvalid, true);
      }
    }
  } else if (fresh) {
    return Finish(slot_key, op, Ok{}, false);  // decided on what was just read
  }
  const redis_keys::PairKeys keys = redis_keys::KeysOf(options_.key_prefix, *target);
  // The notifications of the change, committed with it (outbox.cc).
  std::vector<OutboxItem> items;
  std::int64_t earliest_due = 0;
  if (notifier && changed && (state_changed || !history.empty())) {
    for (Notification& n : notifier->derive(*target, *before, state, history)) {
      items.push_back(MakeOutboxItem(*target, std::move(n)));
      const std::int64_t due = ToUnixMillis(items.back().notification.due_at);
      earliest_due = items.size() == 1 ? due : std::min(earliest_due, due);
    }
  }
  const std::uint16_t slot = redis::HashSlot(keys.pair);
  std::string new_token = changed ? NewToken() : std::string();
  std::vector<std::string> args = {
      token,
      op->idempotency_key,
      seen_record,
      changed ? "1" : "0",
      new_token,
      changed ? encoded : std::string(),
      new_record ? redis_keys::PackRecord(*record) : std::string(),
      state.base.horizon ? std::to_string(ToUnixMillis(*state.base.horizon)) : std::string(),
      std::to_string(NowMicrosSinceSeqEpoch()),
      std::to_string(WallMillis()),
      std::to_string(kIdempotencyRetention.count()),
      op->claimant,
      std::to_string(items.size())};
  args.reserve(args.size() + 3 * items.size() + 3 * history.size());
  for (const OutboxItem& item : items) {
    args.push_back(item.event_id);
    args.push_back(std::to_string(ToUnixMillis(item.notification.due_at)));
    args.push_back(redis_keys::PackOutboxRest(item));
  }
  if (changed) {
    for (const HistoryEntry& entry : history) {
      args.push_back(EncodeEventKey(entry.event));
      args.push_back(std::to_string(ToUnixMillis(EventTime(entry.event))));
      args.push_back(redis_keys::HistoryRest(entry));
    }
  }
  auto committed = [this, slot_key, op, changed, new_token = std::move(new_token),
                    encoded = state_changed ? std::move(encoded) : std::string(), slot,
                    told = !items.empty(), earliest_due](redis::CommandResult result) mutable {
    if (!result) return Finish(slot_key, op, StoreError::kUnavailable, true);
    if (Integer(*result, 0) != 1) return OnConflict(slot_key, op, *result);
    if (told) HintSlot(slot, earliest_due);
    if (changed) {
      std::lock_guard lock(mu_);
      Slot& slot = slots_[slot_key];
      slot.token = std::move(new_token);
      if (!encoded.empty()) slot.encoded = std::move(encoded);  // the state is in place
    }
    Finish(slot_key, op, Ok{}, false);
  };
  client_->RunScript(redis_scripts::CommitPair(),
                     {keys.pair, keys.history, keys.records, keys.claim, keys.outbox,
                      redis_keys::SlotIndexKey(options_.key_prefix, slot)},
                     std::move(args),
                     changed ? redis::Durability::kReplica : redis::Durability::kNone,
                     std::move(committed));
}

// The pair changed since the state the mutation ran on: run it again on what the script returned
// (or resolve again, if the pair became a tombstone).
void RedisClusterStore::OnConflict(const std::string& slot_key, std::shared_ptr<Op> op,
                                   const redis::Reply& reply) {
  conflicts_.fetch_add(1, std::memory_order_relaxed);
  if (++op->attempts >= options_.max_attempts) {
    return Finish(slot_key, op, StoreError::kUnavailable, true);
  }
  if (Integer(reply, 5) == 1) {
    // Another process lost to us and claimed the pair: let it through, then run again on what it
    // wrote (read afresh: its commit is not in this reply).
    const auto delay = std::chrono::milliseconds(1 << std::min(op->attempts, 4));
    return After(delay, [this, slot_key, op]() mutable {
      {
        std::lock_guard lock(mu_);
        slots_[slot_key].known = false;
      }
      PairKey target = op->key;
      Load(slot_key, std::move(op), std::move(target), 0);
    });
  }
  const std::string& token = Text(reply, 1);
  const std::string& tombstone = Text(reply, 3);
  if (!tombstone.empty() || token.empty()) {
    {
      std::lock_guard lock(mu_);
      slots_[slot_key].known = false;
    }
    PairKey target = op->key;
    return Load(slot_key, std::move(op), std::move(target), 0);
  }
  std::optional<StoredState> stored = ReadStoredState(Text(reply, 2));
  if (!stored) return Finish(slot_key, op, StoreError::kInvalid, true);
  {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[slot_key];
    slot.token = token;
    slot.state = std::move(stored->state);
    slot.encoded = std::move(stored->encoded);
  }
  Attempt(slot_key, std::move(op), Text(reply, 4), /*fresh=*/true);
}

// Answers the op, then starts the next one of its slot. `forget`: what the slot knows of the pair
// may be wrong (an error, an unknown outcome).
void RedisClusterStore::Finish(const std::string& slot_key, const std::shared_ptr<Op>& op,
                               StoreStatus status, bool forget) {
  op->done(status);
  {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[slot_key];
    if (forget) slot.known = false;
    slot.ops.pop_front();
    if (!slot.ops.empty()) {
      // The next one starts below, outside the lock.
    } else {
      slot.running = false;
      if (slots_.size() > kMaxIdleSlots) {
        std::erase_if(slots_, [](const auto& kv) { return !kv.second.running; });
      }
      --in_flight_;
      idle_cv_.notify_all();
      return;
    }
  }
  Start(slot_key);
}

void RedisClusterStore::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  std::lock_guard lock(timer_mu_);
  timers_.push_back({std::chrono::steady_clock::now() + delay, std::move(fn)});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>());
  timer_cv_.notify_one();
}

void RedisClusterStore::TimerLoop() {
  std::unique_lock lock(timer_mu_);
  for (;;) {
    if (timers_.empty()) {
      if (timer_stopping_) return;
      timer_cv_.wait(lock);
      continue;
    }
    if (timer_cv_.wait_until(lock, timers_.front().at) != std::cv_status::timeout &&
        std::chrono::steady_clock::now() < timers_.front().at) {
      continue;  // woken early: the earliest may have changed
    }
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>());
    std::function<void()> fn = std::move(timers_.back().fn);
    timers_.pop_back();
    lock.unlock();
    fn();
    lock.lock();
  }
}

// --- Reads -----------------------------------------------------------------------------------

struct RedisClusterStore::ReadStep {
  std::optional<StoreResult<Resolved>> resolved;
  std::optional<PairKey> next;  // a tombstone or link to follow
  std::string pending;          // the canonical id of a link to complete first
};

RedisClusterStore::ReadStep RedisClusterStore::Examine(const PairKey& target, const char* mode,
                                                       const redis::Reply& pair,
                                                       const redis::Reply& link, bool completed) {
  ReadStep step;
  std::string linked = link.type == redis::Reply::Type::kString ? link.str : std::string();
  if (linked.starts_with('!')) {
    linked.erase(0, 1);
    if (!completed) {
      step.pending = std::move(linked);
      return step;
    }
  }
  const std::string& token = Text(pair, 0);
  const std::string& tombstone = Text(pair, 2);
  if (!tombstone.empty()) {
    step.next = PairKey{target.channel_id, UserId::FromText(tombstone)};
    return step;
  }
  if (token.empty() && !linked.empty() && linked != target.user.text()) {
    step.next = PairKey{target.channel_id, UserId::FromText(linked)};
    return step;
  }
  Resolved out{target, token, PairState{}, {}};
  if (!token.empty() && !Text(pair, 1).empty()) {
    auto state = DecodePairState(Text(pair, 1));
    if (!state) {
      step.resolved = StoreError::kInvalid;
      return step;
    }
    out.state = std::move(*state);
  }
  if (mode[0] != 's' && pair.elements.size() > 4) {
    const auto& fields = pair.elements[4].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      auto entry = redis_keys::DecodeHistory(fields[i].str, fields[i + 1].str);
      if (!entry) {
        step.resolved = StoreError::kInvalid;
        return step;
      }
      out.history.push_back(std::move(*entry));
    }
  }
  step.resolved = std::move(out);
  return step;
}

StoreResult<RedisClusterStore::Resolved> RedisClusterStore::ReadResolved(const PairKey& key,
                                                                         const char* mode) {
  PairKey target = key;
  bool completed = false;
  for (int hops = 0; hops <= kMaxHops; ++hops) {
    const std::string links = redis_keys::LinksKey(options_.key_prefix, ScopeOf(target.channel_id));
    Pending pair_read, link_read;
    ReadPairKeys(target, mode, "", pair_read.Callback());
    client_->Run(links, {"HGET", links, "a:" + target.user.text()}, redis::Durability::kNone,
                 link_read.Callback());
    redis::CommandResult pair = pair_read.Get();
    redis::CommandResult link = link_read.Get();
    if (!pair || !link) return StoreError::kUnavailable;
    ReadStep step = Examine(target, mode, *pair, *link, completed);
    if (!step.pending.empty()) {
      // An interrupted link: finished here, before anything is read through it.
      if (auto status = CompleteLink(target.channel_id, step.pending); !status.ok()) {
        return status.error();
      }
      completed = true;
      --hops;
      continue;
    }
    if (step.next) {
      target = std::move(*step.next);
      continue;
    }
    return std::move(*step.resolved);
  }
  return StoreError::kUnavailable;  // a cycle of links: never written by this store
}

void RedisClusterStore::ReadEnds() {
  if (reads_in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(mu_);  // so the destructor cannot miss the wake-up
    idle_cv_.notify_all();
  }
}

void RedisClusterStore::ReadResolvedAsync(const PairKey& key, const char* mode, ResolvedDone done) {
  ReadFrom(key, key, mode, 0, std::move(done));
}

void RedisClusterStore::ReadFrom(PairKey key, PairKey target, const char* mode, int hops,
                                 ResolvedDone done) {
  // The two replies meet here; the second to arrive goes on.
  struct Join {
    Join(PairKey k, PairKey t, ResolvedDone d)
        : key(std::move(k)), target(std::move(t)), done(std::move(d)) {}
    std::atomic<int> remaining{2};
    redis::CommandResult pair = redis::Failure{redis::FailureKind::kUnavailable, ""};
    redis::CommandResult link = redis::Failure{redis::FailureKind::kUnavailable, ""};
    PairKey key, target;
    ResolvedDone done;
  };
  auto join = std::make_shared<Join>(std::move(key), std::move(target), std::move(done));
  auto arrive = [this, join, mode, hops](bool is_pair) {
    return [this, join, mode, hops, is_pair](redis::CommandResult result) {
      (is_pair ? join->pair : join->link) = std::move(result);
      if (join->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      Continue(std::move(join->key), join->target, mode, hops, join->pair, join->link,
               std::move(join->done));
    };
  };
  const std::string links =
      redis_keys::LinksKey(options_.key_prefix, ScopeOf(join->target.channel_id));
  std::string field = "a:" + join->target.user.text();
  ReadPairKeys(join->target, mode, "", arrive(true));
  client_->Run(links, {"HGET", links, std::move(field)}, redis::Durability::kNone, arrive(false));
}

void RedisClusterStore::Continue(PairKey key, const PairKey& target, const char* mode, int hops,
                                 const redis::CommandResult& pair, const redis::CommandResult& link,
                                 ResolvedDone done) {
  if (!pair || !link) return done(StoreError::kUnavailable);
  ReadStep step = Examine(target, mode, *pair, *link, /*completed=*/false);
  if (!step.pending.empty()) {
    // Completing the link blocks: the whole read runs again on the link thread, as LoadPair.
    std::unique_lock lock(link_mu_);
    if (link_stopping_) {
      lock.unlock();
      return done(StoreError::kUnavailable);
    }
    link_jobs_.push_back({.work = [this, key = std::move(key), mode, done = std::move(done)] {
      done(ReadResolved(key, mode));
    }});
    link_cv_.notify_one();
    return;
  }
  if (step.next) {
    if (hops >= kMaxHops) return done(StoreError::kUnavailable);  // a cycle of links
    return ReadFrom(std::move(key), std::move(*step.next), mode, hops + 1, std::move(done));
  }
  done(std::move(*step.resolved));
}

void RedisClusterStore::LoadPairAsync(const PairKey& key, PairLoaded done) {
  ReadBegins();
  ResolvedDone answer = [this, done = std::move(done)](StoreResult<Resolved>&& read) {
    if (read.ok()) {
      done(std::move(read->state));
    } else {
      done(read.error());
    }
    ReadEnds();
  };
  // The pair first, its id's link only if the pair holds nothing (an alias's id, or a user never
  // written): a stored pair, what a status read nearly always finds, costs one command instead of
  // two (the status GET is the hottest path; each command costs Redis and the client alike). A
  // pending link is then not seen by a read of a pair that holds data: such a read answers the
  // pair as it was before the link began, as the canonical id's reads do meanwhile (Examine); the
  // link's own caller has not been answered, and the next read through the link map completes it.
  ReadPairKeys(key, "s", "",
               [this, key, answer = std::move(answer)](redis::CommandResult pair) mutable {
                 static const redis::CommandResult kNoLink = redis::Reply{};
                 if (!pair || !Text(*pair, 0).empty() || !Text(*pair, 2).empty()) {
                   return Continue(key, key, "s", 0, pair, kNoLink, std::move(answer));
                 }
                 const std::string links =
                     redis_keys::LinksKey(options_.key_prefix, ScopeOf(key.channel_id));
                 std::string field = "a:" + key.user.text();
                 client_->Run(links, {"HGET", links, std::move(field)}, redis::Durability::kNone,
                              [this, key = std::move(key), pair = std::move(pair),
                               answer = std::move(answer)](redis::CommandResult link) mutable {
                                Continue(key, key, "s", 0, pair, link, std::move(answer));
                              });
               });
}

void RedisClusterStore::LoadPairsAsync(std::vector<PairKey> keys, PairsLoaded done) {
  if (keys.empty()) return done({});
  // One read per pair, and one HMGET of the ids' links per scope; when every reply is in, each
  // pair goes on as a single read does (most are done; aliases read on).
  struct Batch {
    std::vector<PairKey> keys;
    std::vector<redis::CommandResult> pairs;
    std::vector<redis::CommandResult> links;  // per scope
    std::vector<std::size_t> scope_of;        // per key: its scope's index in `links`
    std::vector<StoreResult<PairState>> states;
    std::atomic<std::size_t> replies{0};  // replies still to come
    std::atomic<std::size_t> answers{0};  // pairs still to answer
    PairsLoaded done;
  };
  ReadBegins();
  auto batch = std::make_shared<Batch>();
  const std::size_t n = keys.size();
  batch->keys = std::move(keys);
  batch->done = std::move(done);
  const redis::CommandResult unread = redis::Failure{redis::FailureKind::kUnavailable, ""};
  batch->pairs.assign(n, unread);
  batch->states.assign(n, StoreError::kUnavailable);
  batch->scope_of.resize(n);
  std::vector<std::vector<std::string>> hmgets;  // per scope: HMGET key field…
  {
    std::unordered_map<std::string, std::size_t> scopes;
    for (std::size_t i = 0; i < n; ++i) {
      std::string links =
          redis_keys::LinksKey(options_.key_prefix, ScopeOf(batch->keys[i].channel_id));
      auto [it, inserted] = scopes.try_emplace(links, hmgets.size());
      if (inserted) hmgets.push_back({"HMGET", std::move(links)});
      batch->scope_of[i] = it->second;
      hmgets[it->second].push_back("a:" + batch->keys[i].user.text());
    }
  }
  batch->links.assign(hmgets.size(), unread);
  batch->replies = n + hmgets.size();
  batch->answers = n;
  // Each pair's answer; the last one answers the batch.
  auto answer = [this, batch](std::size_t i, StoreResult<PairState> state) {
    batch->states[i] = std::move(state);
    if (batch->answers.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    batch->done(std::move(batch->states));
    ReadEnds();
  };
  // Every reply is in: each pair goes on from its own reply and its link.
  auto all_in = [this, batch, answer]() {
    std::vector<std::size_t> offset(batch->links.size(), 0);
    for (std::size_t i = 0; i < batch->keys.size(); ++i) {
      const redis::CommandResult& links = batch->links[batch->scope_of[i]];
      const std::size_t at = offset[batch->scope_of[i]]++;
      redis::CommandResult link = redis::Failure{redis::FailureKind::kUnavailable, ""};
      if (links && links->type == redis::Reply::Type::kArray && at < links->elements.size()) {
        link = links->elements[at];
      }
      Continue(batch->keys[i], batch->keys[i], "s", 0, batch->pairs[i], link,
               [answer, i](StoreResult<Resolved>&& read) {
                 if (read.ok()) {
                   answer(i, std::move(read->state));
                 } else {
                   answer(i, read.error());
                 }
               });
    }
  };
  auto arrive = [batch, all_in](redis::CommandResult* into) {
    return [batch, all_in, into](redis::CommandResult result) {
      *into = std::move(result);
      if (batch->replies.fetch_sub(1, std::memory_order_acq_rel) == 1) all_in();
    };
  };
  for (std::size_t s = 0; s < hmgets.size(); ++s) {
    const std::string routing = hmgets[s][1];
    client_->Run(routing, std::move(hmgets[s]), redis::Durability::kNone, arrive(&batch->links[s]));
  }
  for (std::size_t i = 0; i < n; ++i) {
    ReadPairKeys(batch->keys[i], "s", "", arrive(&batch->pairs[i]));
  }
}

StoreResult<PairState> RedisClusterStore::LoadPair(const PairKey& key) {
  auto read = ReadResolved(key, "s");
  if (!read) return read.error();
  return std::move(read->state);
}

StoreResult<std::vector<HistoryEntry>> RedisClusterStore::LoadHistory(const PairKey& key,
                                                                      std::int64_t before_seq,
                                                                      int limit) {
  auto read = ReadResolved(key, "h");
  if (!read) return read.error();
  std::vector<HistoryEntry>& all = read->history;
  std::erase_if(all, [&](const HistoryEntry& e) { return before_seq != 0 && e.seq >= before_seq; });
  std::sort(all.begin(), all.end(),
            [](const HistoryEntry& a, const HistoryEntry& b) { return a.seq > b.seq; });
  if (static_cast<int>(all.size()) > std::max(limit, 0)) all.resize(std::max(limit, 0));
  return std::move(all);
}

StoreResult<std::vector<HistoryEntry>> RedisClusterStore::LoadHistoryUntil(const PairKey& key,
                                                                           Instant until,
                                                                           int count) {
  auto read = ReadResolved(key, "h");
  if (!read) return read.error();
  return CutHistoryUntil(std::move(read->history), until, count);
}

void RedisClusterStore::LoadHistoryUntilAsync(const PairKey& key, Instant until, int count,
                                              HistoryLoaded done) {
  ReadBegins();
  ReadResolvedAsync(key, "h",
                    [this, until, count, done = std::move(done)](StoreResult<Resolved>&& read) {
                      if (read.ok()) {
                        done(CutHistoryUntil(std::move(read->history), until, count));
                      } else {
                        done(read.error());
                      }
                      ReadEnds();
                    });
}

}  // namespace callgate

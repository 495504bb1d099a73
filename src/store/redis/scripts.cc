#include "store/redis/scripts.h"

#include <string>

namespace callgate::redis_scripts {

namespace {

// How every script reads and writes the pair key: one string, so a state of any size stays one
// allocation (a hash holding a value over 64 bytes leaves the compact listpack encoding):
//   "D" token(8) last-seq(7, big-endian) trimmed-horizon(6; -2^47: none) encoded-state
//   "T" token(8) canonical-id                       (a tombstone: merged into that user's pair)
constexpr char kPairCodec[] = R"lua(
local NONE = -140737488355328
local function parse(raw)
  if not raw then return '', '', '', 0, NONE end
  local tok = string.sub(raw, 2, 9)
  if string.sub(raw, 1, 1) == 'T' then return tok, '', string.sub(raw, 10), 0, NONE end
  return tok, string.sub(raw, 23), '', struct.unpack('>i7', raw, 10), struct.unpack('>i6', raw, 17)
end
local function data(tok, q, z, state)
  return 'D' .. tok .. struct.pack('>i7', q) .. struct.pack('>i6', z) .. state
end
)lua";

// How the scripts read and write an outbox item (one field of a pair's outbox hash, named by its
// event id; the field "#" counts the pair's items): a fixed header, the lease owner, then the rest
// only C++ reads (keys.h, PackOutboxRest):
//   seq(7) due(6) retry(6) lease-until(6) settled-at(6) attempts(2) state(1: 0 unsettled,
//   1 delivered, 2 dropped) owner-length(1) owner rest
// `first` finds the pair's first unsettled item by (due, seq), dropping settled ones settled
// before `cutoff`; `ready` is when that item may be claimed.
constexpr char kOutboxCodec[] = R"lua(
local function item(n, due, retry, lease, settled, attempts, st, owner, rest)
  return struct.pack('>i7i6i6i6i6i2B', n, due, retry, lease, settled, attempts, st) ..
         string.char(#owner) .. owner .. rest
end
local function unitem(v)
  local n, due, retry, lease, settled, attempts, st = struct.unpack('>i7i6i6i6i6i2B', v)
  local olen = string.byte(v, 35)
  return n, due, retry, lease, settled, attempts, st, string.sub(v, 36, 35 + olen),
         string.sub(v, 36 + olen)
end
local function first(O, cutoff)
  local all = redis.call('HGETALL', O)
  local best, bv, bd, bn
  for j = 1, #all, 2 do
    local f, v = all[j], all[j + 1]
    if f ~= '#' then
      local n, due, retry, lease, settled, attempts, st = unitem(v)
      if st == 0 then
        if not best or due < bd or (due == bd and n < bn) then best, bv, bd, bn = f, v, due, n end
      elseif cutoff and settled < cutoff then
        redis.call('HDEL', O, f)
      end
    end
  end
  return best, bv
end
local function ready(v)
  local n, due, retry, lease = unitem(v)
  return math.max(due, retry, lease)
end
-- Puts the outbox O in the slot's index X at the time its first unsettled item is ready, or
-- takes it out (its settled items then expire after `retention` ms).
local function index(O, X, cutoff, retention)
  local f, v = first(O, cutoff)
  if f then
    redis.call('ZADD', X, ready(v), O)
  else
    redis.call('ZREM', X, O)
    redis.call('PEXPIRE', O, retention)
  end
  return f, v
end
local function head(X)
  local h = redis.call('ZRANGE', X, 0, 0, 'WITHSCORES')
  return h[2] or ''
end
)lua";

}  // namespace

// KEYS: the outbox index of one slot. ARGV: 1 now (ms), 2 owner, 3 lease end (ms), 4 most pairs
// to look at, 5 the settled-at cutoff (ms) before which settled items go, 6 their retention (ms).
// Leases the first unsettled item of each pair ready by now (a pair's later items wait for it).
// Returns {the slot's next ready time ("" if none), outbox key, event id, value, ...}.
const redis::Script& ClaimOutbox() {
  static const redis::Script script(std::string(kOutboxCodec) + R"lua(
local X, now, owner, lease_until = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local cutoff, retention = tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {''}
for _, O in ipairs(redis.call('ZRANGEBYSCORE', X, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local f, v = index(O, X, cutoff, retention)
  if f and ready(v) <= now then
    local n, due, retry, lease, settled, attempts, st, _, rest = unitem(v)
    local leased = item(n, due, retry, lease_until, settled, attempts, st, owner, rest)
    redis.call('HSET', O, f, leased)
    redis.call('ZADD', X, lease_until, O)
    table.insert(out, O)
    table.insert(out, f)
    table.insert(out, leased)
  end
end
out[1] = head(X)
return out
)lua");
  return script;
}

// KEYS: a pair's outbox, its slot's outbox index. ARGV: 1 event id, 2 owner, 3 "d" delivered, "x"
// dropped or "r" retry, 4 now (ms), 5 the retry time (ms), 6 retention (ms) of settled items.
// Only while `owner`'s lease holds. Returns {1, the slot's next ready time ("" if none)}, or {0}
// when the owner no longer holds the item.
const redis::Script& SettleOutbox() {
  static const redis::Script script(std::string(kOutboxCodec) + R"lua(
local O, X, now = KEYS[1], KEYS[2], tonumber(ARGV[4])
local v = redis.call('HGET', O, ARGV[1])
if not v then return {0} end
local n, due, retry, lease, settled, attempts, st, owner, rest = unitem(v)
if st ~= 0 or owner ~= ARGV[2] or lease <= now then return {0} end
if ARGV[3] == 'r' then
  v = item(n, due, tonumber(ARGV[5]), 0, settled, attempts + 1, 0, '', rest)
else
  v = item(n, due, retry, 0, now, attempts, ARGV[3] == 'd' and 1 or 2, '', rest)
end
redis.call('HSET', O, ARGV[1], v)
index(O, X, nil, tonumber(ARGV[6]))
return {1, head(X)}
)lua");
  return script;
}

// KEYS: the outbox index of one slot. Returns the number of unsettled items of its pairs.
const redis::Script& CountOutbox() {
  static const redis::Script script(std::string(kOutboxCodec) + R"lua(
local count = 0
for _, O in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local all = redis.call('HGETALL', O)
  for j = 1, #all, 2 do
    if all[j] ~= '#' then
      local n, due, retry, lease, settled, attempts, st = unitem(all[j + 1])
      if st == 0 then count = count + 1 end
    end
  end
end
return count
)lua");
  return script;
}

// KEYS: pair, history, records. ARGV: mode ("s" state, "h" and its history, "a" and its history
// and every record), idempotency key ("" for none).
// Returns {token, state, tombstone, record[, {history field, value, ...}[, {record key, value,
// ...}]]}, "" for what is absent; a tombstone comes without history or records.
const redis::Script& ReadPair() {
  static const redis::Script script(std::string(kPairCodec) + R"lua(
local tok, state, tomb = parse(redis.call('GET', KEYS[1]))
local rec = ''
if ARGV[2] ~= '' then rec = redis.call('HGET', KEYS[3], ARGV[2]) or '' end
local out = {tok, state, tomb, rec}
if ARGV[1] ~= 's' and tomb == '' then out[5] = redis.call('HGETALL', KEYS[2]) end
if ARGV[1] == 'a' and tomb == '' then out[6] = redis.call('HGETALL', KEYS[3]) end
return out
)lua");
  return script;
}

// KEYS: pair, history, records, claim, outbox, the outbox index of the pair's slot.
// ARGV: 1 expected token ("" = the pair does not exist), 2 idempotency key (""), 3 the record the
// mutation saw under it (""), 4 "1" to write, "0" only to check, 5 new token (8 bytes), 6 new
// state, 7 new record (""), 8 the state's horizon in ms ("" none), 9 now in µs since the seq epoch
// (the floor of new seqs), 10 now in ms, 11 record retention in ms, 12 the committing operation
// (its claim), 13 the number m of outbox items, then per item: event id, due time in ms, the rest
// of its value (keys.h, PackOutboxRest); then per history entry: packed event key, time in ms, the
// rest of its value (source byte, details). An item whose id the pair's outbox holds already is
// kept as it is (derived again). Returns {1} when committed (or checked), else {0, token, state,
// tombstone, record, blocked}: what the pair holds now, so that the retry needs no other read.
// Fairness: an operation that loses a version check claims the pair for 100 ms (unless someone else
// holds it); while a claim holds, other operations' writes are refused with blocked = 1 (they back
// off), so the loser gets through on its retry instead of losing to the same fast writer again and
// again.
const redis::Script& CommitPair() {
  static const redis::Script script(std::string(kPairCodec) + kOutboxCodec + R"lua(
local P, H, I, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tok, state, tomb, q, z = parse(redis.call('GET', P))
local rec = ''
if ARGV[2] ~= '' then rec = redis.call('HGET', I, ARGV[2]) or '' end
local claim = false
if ARGV[4] == '1' then claim = redis.call('GET', C) end
local blocked = claim and claim ~= ARGV[12]
if blocked or tok ~= ARGV[1] or rec ~= ARGV[3] or tomb ~= '' then
  if ARGV[4] == '1' and not claim then redis.call('SET', C, ARGV[12], 'PX', 100) end
  return {0, tok, state, tomb, rec, blocked and 1 or 0}
end
if ARGV[4] ~= '1' then return {1} end
local m = tonumber(ARGV[13])
local hist = 14 + 3 * m
if m > 0 then redis.call('PERSIST', KEYS[5]) end
for i = 14, hist - 1, 3 do
  if redis.call('HEXISTS', KEYS[5], ARGV[i]) == 0 then
    local n = redis.call('HINCRBY', KEYS[5], '#', 1)
    local due = tonumber(ARGV[i + 1])
    redis.call('HSET', KEYS[5], ARGV[i], item(n, due, due, 0, 0, 0, 0, '', ARGV[i + 2]))
    redis.call('ZADD', KEYS[6], 'LT', due, KEYS[5])
  end
end
local floor = tonumber(ARGV[9])
for i = hist, #ARGV, 3 do
  local k, at = ARGV[i], tonumber(ARGV[i + 1])
  local old = redis.call('HGET', H, k)
  if not old then
    q = math.max(q + 1, floor)
    redis.call('HSET', H, k, struct.pack('>i6', at) .. struct.pack('>i7', q) .. ARGV[i + 2])
  else
    local old_at, old_seq = struct.unpack('>i6i7', old)
    if at < old_at then
      redis.call('HSET', H, k, struct.pack('>i6', at) .. struct.pack('>i7', old_seq) .. ARGV[i + 2])
    end
  end
end
if ARGV[8] ~= '' then
  local horizon = tonumber(ARGV[8])
  if horizon > z + 3600000 then
    local all = redis.call('HGETALL', H)
    for j = 1, #all, 2 do
      if struct.unpack('>i6', all[j + 1]) < horizon then redis.call('HDEL', H, all[j]) end
    end
    z = horizon
  end
end
redis.call('SET', P, data(ARGV[5], q, z, ARGV[6]))
if ARGV[2] ~= '' and ARGV[7] ~= '' then
  redis.call('HSET', I, ARGV[2], ARGV[7])
  redis.call('PEXPIRE', I, ARGV[11])
  if redis.call('HLEN', I) > 32 then
    local cutoff = tonumber(ARGV[10]) - tonumber(ARGV[11])
    local all = redis.call('HGETALL', I)
    for j = 1, #all, 2 do
      if struct.unpack('>i6', all[j + 1]) < cutoff then redis.call('HDEL', I, all[j]) end
    end
  end
end
if claim == ARGV[12] then redis.call('DEL', C) end
return {1}
)lua");
  return script;
}

// KEYS: pair, history, records. ARGV: 1 expected token, 2 new token, 3 new state, 4 seq floor
// (µs), 5 record retention in ms, 6 number of records n, then n (key, value) records, then per
// history entry: packed event key, time in ms, seq ("" for a new one), rest of the value.
// The history becomes exactly the entries given; a record replaces one under its key only if it
// is older. Returns as CommitPair.
const redis::Script& ReplacePair() {
  static const redis::Script script(std::string(kPairCodec) + R"lua(
local P, H, I = KEYS[1], KEYS[2], KEYS[3]
local tok, state, tomb, q, z = parse(redis.call('GET', P))
if tok ~= ARGV[1] or tomb ~= '' then return {0, tok, state, tomb, '', 0} end
local n = tonumber(ARGV[6])
local first = 7 + 2 * n
for i = first, #ARGV, 4 do
  if ARGV[i + 2] ~= '' then q = math.max(q, tonumber(ARGV[i + 2])) end
end
local floor = tonumber(ARGV[4])
redis.call('DEL', H)
for i = first, #ARGV, 4 do
  local seq
  if ARGV[i + 2] ~= '' then
    seq = tonumber(ARGV[i + 2])
  else
    q = math.max(q + 1, floor)
    seq = q
  end
  redis.call('HSET', H, ARGV[i],
             struct.pack('>i6', tonumber(ARGV[i + 1])) .. struct.pack('>i7', seq) .. ARGV[i + 3])
end
for i = 7, 6 + 2 * n, 2 do
  local old = redis.call('HGET', I, ARGV[i])
  if not old or struct.unpack('>i6', ARGV[i + 1]) < struct.unpack('>i6', old) then
    redis.call('HSET', I, ARGV[i], ARGV[i + 1])
  end
end
if n > 0 then redis.call('PEXPIRE', I, ARGV[5]) end
redis.call('SET', P, data(ARGV[2], q, z, ARGV[3]))
return {1}
)lua");
  return script;
}

// KEYS: pair, history, records. ARGV: 1 expected token ("" = absent), 2 new token, 3 the
// canonical id. The pair's data goes (a merge folded it into the canonical pair first).
const redis::Script& TombstonePair() {
  static const redis::Script script(std::string(kPairCodec) + R"lua(
local tok, state, tomb = parse(redis.call('GET', KEYS[1]))
if tok ~= ARGV[1] then return {0, tok, state, tomb, '', 0} end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], 'T' .. ARGV[2] .. ARGV[3])
return {1}
)lua");
  return script;
}

// KEYS: the scope's links. ARGV: the ids learnt together. The user's group is those ids, the
// canonical ids they resolve to and the aliases of those; its smallest id (byte order) becomes the
// canonical one, every other id an alias of it, marked pending ("!") until the merge is done.
// Returns {canonical, "0" if nothing changed else "1", alias...}.
const redis::Script& BeginLink() {
  static const redis::Script script(R"lua(
local L = KEYS[1]
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local canon, group = {}, {}
local settled = true
for i = 1, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HGET', L, 'a:' .. id)
  local c = id
  if v then
    if string.sub(v, 1, 1) == '!' then
      c = string.sub(v, 2)
      settled = false
    else
      c = v
    end
  end
  canon[c] = true
  group[id] = true
end
local ids = {}
for c in pairs(canon) do
  group[c] = true
  local m = redis.call('HGET', L, 'm:' .. c)
  if m then
    for a in string.gmatch(m, '%S+') do group[a] = true end
  end
end
for id in pairs(group) do table.insert(ids, id) end
table.sort(ids, less)
local w = ids[1]
local ncanon = 0
for _ in pairs(canon) do ncanon = ncanon + 1 end
local out = {w, '1'}
if ncanon == 1 and canon[w] and settled then out[2] = '0' end
local aliases = {}
for i = 2, #ids do
  table.insert(aliases, ids[i])
  table.insert(out, ids[i])
end
if out[2] == '1' then
  for i = 2, #ids do
    redis.call('HSET', L, 'a:' .. ids[i], '!' .. w)
    redis.call('HDEL', L, 'm:' .. ids[i])
  end
  redis.call('HDEL', L, 'a:' .. w)
  redis.call('HSET', L, 'm:' .. w, table.concat(aliases, ' '))
end
return out
)lua");
  return script;
}

// KEYS: the scope's links. ARGV: 1 the canonical id, then the aliases whose merge is done.
const redis::Script& EndLink() {
  static const redis::Script script(R"lua(
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], 'a:' .. ARGV[i]) == '!' .. ARGV[1] then
    redis.call('HSET', KEYS[1], 'a:' .. ARGV[i], ARGV[1])
  end
end
return 1
)lua");
  return script;
}

// KEYS: accounts, subaccounts, channels, phone numbers, callbacks, api keys, revocations,
// generation. ARGV: the operation, then its fields. Returns {0, generation} when changed, {1}
// when something it refers to is missing, {2} when the id is taken.
const redis::Script& TenantWrite() {
  static const redis::Script script(R"lua(
local A, S, C, N = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local CB, K, R, G = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local NT = KEYS[9]
local op = ARGV[1]
local function has(key, field) return redis.call('HEXISTS', key, field) == 1 end
if op == 'account' then
  if has(A, ARGV[2]) then return {2} end
  redis.call('HSET', A, ARGV[2], ARGV[3])
elseif op == 'subaccount' then
  if not has(A, ARGV[3]) then return {1} end
  if has(S, ARGV[2]) then return {2} end
  redis.call('HSET', S, ARGV[2], ARGV[4])
elseif op == 'channel' then
  if not has(S, ARGV[3]) then return {1} end
  if has(C, ARGV[2]) or has(N, ARGV[4]) then return {2} end
  redis.call('HSET', C, ARGV[2], ARGV[5])
  redis.call('HSET', N, ARGV[4], ARGV[2])
  redis.call('HSET', CB, ARGV[2], ARGV[6])
elseif op == 'callback' then
  if not has(C, ARGV[2]) then return {1} end
  redis.call('HSET', CB, ARGV[2], ARGV[3])
elseif op == 'key' then
  if not has(A, ARGV[3]) then return {1} end
  if has(K, ARGV[2]) then return {2} end
  redis.call('HSET', K, ARGV[2], ARGV[4])
elseif op == 'revoke' then
  if not has(K, ARGV[2]) then return {1} end
  redis.call('HSETNX', R, ARGV[2], ARGV[3])
elseif op == 'notify' then
  if not has(A, ARGV[2]) then return {1} end
  if ARGV[3] == '' then
    redis.call('HDEL', NT, ARGV[2])
  else
    redis.call('HSET', NT, ARGV[2], ARGV[3])
  end
else
  return redis.error_reply('unknown tenant operation')
end
return {0, redis.call('INCR', G)}
)lua");
  return script;
}

// KEYS as TenantWrite. Returns {generation, accounts, subaccounts, channels, callbacks, api keys,
// revocations, notification targets}, each hash as a flat field/value array: one consistent
// snapshot.
const redis::Script& LoadTenants() {
  static const redis::Script script(R"lua(
return {redis.call('GET', KEYS[8]) or '0', redis.call('HGETALL', KEYS[1]),
        redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
        redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6]),
        redis.call('HGETALL', KEYS[7]), redis.call('HGETALL', KEYS[9])}
)lua");
  return script;
}

}  // namespace callgate::redis_scripts

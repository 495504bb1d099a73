// Test-only helpers shared by the storage tests: a temporary directory that removes itself, a
// mutation that records one permission request, every kind of event and a way to compare them,
// and gtest printers for the store's values so a failed comparison shows the data, not raw bytes.
// Every test file that compares PairState or HistoryEntry includes this header, so all of them
// print these types the same way. Thread-compatible.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/ledger.h"
#include "store/pair_store.h"

namespace callgate {

// A fixed, arbitrary time the tests count from.
inline const Instant kT0 = FromUnixMillis(1'700'000'000'000);

// --- Golden values of the storage format (store/codec.h) ----------------------------------

constexpr std::string_view kGoldenUuid = "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";

// Every flag of the state's flags byte set (temporary status, expiry, horizon, unanswered count,
// calls/holds follow), every reply flag and every call flag set on one entry and clear on
// another, and ids of every packed form (raw, UUID, wamid/wacid without and with padding).
inline PairState GoldenState() {
  const std::string uuid(kGoldenUuid);
  PairState s;
  s.base.permission = {PermissionStatus::kTemporary, kT0 + kDays7};
  s.base.consecutive_unanswered = 3;
  s.base.horizon = kT0 - Millis(12345);
  s.requests[uuid] = kT0;
  s.requests["req-1"] = kT0 - Millis(1);
  s.replies["wamid.AAAA"] = {kT0 + Millis(10), true, true, kT0 + Millis(99),
                             ReplySource::kAutomatic};
  s.replies["wamid.AA=="] = {kT0 + Millis(11), false, false, std::nullopt,
                             ReplySource::kUserAction};
  CallFacts every_flag;
  every_flag.direction = CallDirection::kUserInitiated;
  every_flag.connected_at = kT0 + Millis(20);
  every_flag.started_at = kT0 + Millis(21);
  every_flag.terminated_at = kT0 + Millis(22);
  every_flag.rejected_at = kT0 + Millis(23);
  every_flag.callback_at = kT0 + Millis(24);
  every_flag.picked_up = true;
  every_flag.authorization_id = uuid;
  s.calls["wacid.AAAA"] = every_flag;
  s.calls["wacid.AAA="] = CallFacts{};
  s.holds["auth-1"] = {kT0 + Millis(50), kT0 + Millis(50) + std::chrono::minutes(5)};
  return s;
}

// GoldenState as storage layout 5 wrote it, with an idempotency record embedded (kLayout5Record).
constexpr std::string_view kLayout5StateHex =
    "02f180b08fbffe62f1d0e5c0040302015a61b97b2c3d4e5f8a9b0c1d2e3f4a5bf2c001287265712d3101020b00"
    "18001a000000010fb20102150000001c000000ff9d0102020202015a61b97b2c3d4e5f8a9b0c1d2e3f4a5b0130"
    "617574682d3134c0cf24011a7065726d697373696f6e5f72657175657374733a6964656d2d31abcf2428726571"
    "2d31";

inline const std::pair<std::string, IdempotencyRecord> kLayout5Record = {
    "permission_requests:idem-1", {kT0 + Millis(60), "req-1"}};

// The history key of permission request `id`.
inline std::string RequestKey(const std::string& id) {
  return EventKey(PermissionRequested{.request_id = id});
}

// Records permission request `id` and its history entry, refusing (returning false) if the id is
// already there. Safe to re-run: it captures only values.
inline PairMutation Request(std::string id, Instant at) {
  return [id = std::move(id), at](PairState& state, std::vector<HistoryEntry>& history) {
    const Event event = PermissionRequested{.request_id = id, .at = at};
    if (Apply(state, event, LimitsProfile::kProduction) != ApplyOutcome::kApplied) return false;
    history.push_back({.event_key = EventKey(event), .source = EventSource::kApi, .event = event});
    return true;
  };
}

// Every field of an event, for comparing events (they have no operator==).
inline auto EventFields(const PermissionRequested& e) { return std::tie(e.request_id, e.at); }
inline auto EventFields(const PermissionReplied& e) {
  return std::tie(e.message_id, e.at, e.accepted, e.permanent, e.expires_at, e.source);
}
inline auto EventFields(const CallConnected& e) {
  return std::tie(e.call_id, e.at, e.direction, e.authorization_id);
}
inline auto EventFields(const CallTerminated& e) {
  return std::tie(e.call_id, e.at, e.direction, e.picked_up, e.started_at, e.authorization_id);
}
inline auto EventFields(const CallRejected& e) {
  return std::tie(e.call_id, e.at, e.authorization_id);
}
inline auto EventFields(const CallbackGranted& e) { return std::tie(e.call_id, e.at); }
inline auto EventFields(const NoticeFinalized& e) {
  return std::tie(e.id, e.at, e.kind, e.cause_id);
}
inline auto EventFields(const UserIdChanged& e) { return std::tie(e.user_id, e.at, e.previous); }
inline auto EventFields(const CallAuthorized& e) {
  return std::tie(e.authorization_id, e.at, e.expires_at);
}

inline bool SameEvent(const Event& a, const Event& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        return EventFields(x) == EventFields(std::get<std::decay_t<decltype(x)>>(b));
      },
      a);
}

// Runs `mutation` under `idempotency_key` and waits; returns the record the mutation found.
template <class Mutation>
std::optional<IdempotencyRecord> UpdateUnderKey(PairStore& store, const PairKey& key,
                                                const std::string& idempotency_key,
                                                Mutation mutation) {
  std::promise<StoreResult<std::optional<IdempotencyRecord>>> promise;
  auto future = promise.get_future();
  UpdatePairIdempotent(
      store, key, idempotency_key,
      [mutation](
          PairState& state, std::vector<HistoryEntry>& history,
          std::optional<IdempotencyRecord>& record) -> Mutated<std::optional<IdempotencyRecord>> {
        const std::optional<IdempotencyRecord> found = record;
        const bool write = mutation(state, history, record);
        return {found, write};
      },
      std::function<void(StoreResult<std::optional<IdempotencyRecord>>)>(
          [&promise](auto result) { promise.set_value(std::move(result)); }));
  auto result = future.get();
  EXPECT_TRUE(result.ok());
  return result.ok() ? *result : std::nullopt;
}

// Records request `id` and keeps a record of it under the update's key, unless the pair already
// has one there (then it changes nothing).
inline auto RequestOnce(std::string id, Instant at) {
  return [id = std::move(id), at](PairState& state, std::vector<HistoryEntry>& history,
                                  std::optional<IdempotencyRecord>& record) {
    if (record) return false;
    record = IdempotencyRecord{at, id};
    return Request(id, at)(state, history);
  };
}

// Every kind of event, each with every field set, and again with only what it must have; no two
// share an event key.
inline std::vector<Event> EveryEvent() {
  return {
      PermissionRequested{.request_id = "req-1", .at = kT0},
      PermissionRequested{.request_id = std::string(300, 'r'), .at = FromUnixMillis(-1)},
      PermissionReplied{.message_id = "wamid-1",
                        .at = kT0,
                        .accepted = true,
                        .permanent = true,
                        .expires_at = kT0 + kDays7,
                        .source = ReplySource::kAutomatic},
      PermissionReplied{.message_id = "wamid-2", .at = kT0},
      CallConnected{.call_id = "wacid-1",
                    .at = kT0,
                    .direction = CallDirection::kUserInitiated,
                    .authorization_id = "auth-1"},
      CallConnected{.call_id = "wacid-2", .at = kT0},
      CallTerminated{.call_id = "wacid-1",
                     .at = kT0 + Millis(30),
                     .direction = CallDirection::kUserInitiated,
                     .picked_up = true,
                     .started_at = kT0 + Millis(1),
                     .authorization_id = "auth-1"},
      CallTerminated{.call_id = "wacid-2", .at = kT0},
      CallRejected{.call_id = "wacid-3", .at = kT0, .authorization_id = "auth-3"},
      CallRejected{.call_id = "wacid-4", .at = kT0},
      CallbackGranted{.call_id = "wacid-5", .at = kT0},
      CallAuthorized{.authorization_id = "auth-6", .at = kT0, .expires_at = kT0 + Millis(300000)},
      UserIdChanged{.user_id = "US.2", .at = kT0, .previous = "US.1"},
  };
}

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "callgate-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void PrintTo(const PairState& state, std::ostream* os) {
  auto time = [](Instant t) { return FormatMillis(t); };
  auto opt = [&](const std::optional<Instant>& t) { return t ? time(*t) : std::string("-"); };
  *os << "{base: status=" << StatusName(state.base.permission.status)
      << " expires=" << opt(state.base.permission.expires_at)
      << " unanswered=" << state.base.consecutive_unanswered
      << " horizon=" << opt(state.base.horizon) << "; requests:";
  for (const auto& [id, at] : state.requests) *os << " " << id << "@" << time(at);
  *os << "; replies:";
  for (const auto& [id, r] : state.replies) {
    *os << " " << id << "@" << time(r.at) << "(accepted=" << r.accepted
        << " permanent=" << r.permanent << " expires=" << opt(r.expires_at)
        << " automatic=" << (r.source == ReplySource::kAutomatic) << ")";
  }
  *os << "; calls:";
  for (const auto& [id, c] : state.calls) {
    *os << " " << id << "(user=" << (c.direction == CallDirection::kUserInitiated)
        << " picked_up=" << c.picked_up << " connected=" << opt(c.connected_at)
        << " started=" << opt(c.started_at) << " terminated=" << opt(c.terminated_at)
        << " rejected=" << opt(c.rejected_at) << " callback=" << opt(c.callback_at)
        << " authorization=" << c.authorization_id << ")";
  }
  *os << "; holds:";
  for (const auto& [id, h] : state.holds) {
    *os << " " << id << "@" << time(h.at) << "(expires=" << time(h.expires_at) << ")";
  }
  *os << "}";
}

inline void PrintTo(const HistoryEntry& e, std::ostream* os) {
  *os << "{seq=" << e.seq << " key=" << e.event_key << " source=" << EventSourceName(e.source)
      << " event=" << EventKind(e.event) << ":" << EventId(e.event) << "@"
      << FormatMillis(EventTime(e.event)) << "}";
}

}  // namespace callgate

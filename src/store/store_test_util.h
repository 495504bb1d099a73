// Test-only helpers shared by the storage tests: a temporary directory that removes itself, a
// mutation that records one permission request, every kind of event and a way to compare them,
// and gtest printers for the store's values so a failed comparison shows the data, not raw bytes.
// Every test file that compares PairState or HistoryEntry includes this header, so all of them
// print these types the same way. Thread-compatible.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
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
  *os << "; replays:";
  for (const auto& [key, r] : state.replays) {
    *os << " " << key << "@" << time(r.at) << "->" << r.result_id;
  }
  *os << "}";
}

inline void PrintTo(const HistoryEntry& e, std::ostream* os) {
  *os << "{seq=" << e.seq << " key=" << e.event_key << " source=" << EventSourceName(e.source)
      << " event=" << EventKind(e.event) << ":" << EventId(e.event) << "@"
      << FormatMillis(EventTime(e.event)) << "}";
}

}  // namespace callgate

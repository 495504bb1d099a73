// Read a history page: a pair's applied events newest first, with the derived notices
// (reconsider shown, auto-revoked, expired): those its facts still give, derived at read time,
// and those compaction finalized, stored in the history — so any delivery order of the same
// events reads the same history. Pages are cut by an opaque cursor and read through the store a
// page at a time. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pairs/status.h"

namespace callgate {

inline constexpr int kDefaultHistoryPage = 50;
inline constexpr int kMaxHistoryPage = 500;

// Where a page starts: just after (older than) the last item of the page before.
struct HistoryCursor {
  Instant at;
  bool derived = false;
  std::string key;
};

// The text a client passes back; DecodeHistoryCursor is its inverse (nullopt if not one).
std::string EncodeHistoryCursor(const HistoryCursor& cursor);
std::optional<HistoryCursor> DecodeHistoryCursor(std::string_view text);

struct HistoryItem {
  Instant at;
  bool derived = false;        // a notice: at equal times it follows (reads above) its cause
  std::string key;             // unique; orders items with equal times
  std::string_view kind;       // EventKind or NoticeName
  std::string_view source;     // EventSourceName, or "derived"
  std::string upstream_id;     // the event's id, or a notice's cause
  std::optional<Event> event;  // the event, for its details; none for a notice
};

struct HistoryQuery {
  PairRef pair;
  int limit = kDefaultHistoryPage;  // 1..kMaxHistoryPage
  std::optional<HistoryCursor> after;
  Instant now;
};

struct HistoryPage {
  std::vector<HistoryItem> items;
  std::optional<HistoryCursor> next;  // set when more items follow
};

StoreResult<HistoryPage> ReadHistory(PairStore& store, const HistoryQuery& query);
// The same without blocking (the store's asynchronous reads): `done` runs once, inline or on a
// store thread. `store` must outlive the read.
void ReadHistoryAsync(PairStore& store, HistoryQuery query,
                      std::function<void(StoreResult<HistoryPage>)> done);

}  // namespace callgate

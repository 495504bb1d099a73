#include "pairs/history.h"

#include <algorithm>
#include <charconv>
#include <memory>

#include "core/encoding.h"

namespace callgate {

namespace {

auto Order(const HistoryItem& item) { return std::tie(item.at, item.derived, item.key); }
auto Order(const HistoryCursor& cursor) { return std::tie(cursor.at, cursor.derived, cursor.key); }

struct NewerFirst {
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return Order(a) > Order(b);
  }
};

}  // namespace

// Cursors are opaque: hex of "<millis>|<d or e>|<key>" of the last item returned.
std::string EncodeHistoryCursor(const HistoryCursor& cursor) {
  const std::string raw =
      std::to_string(ToUnixMillis(cursor.at)) + (cursor.derived ? "|d|" : "|e|") + cursor.key;
  return HexEncode(raw);
}

std::optional<HistoryCursor> DecodeHistoryCursor(std::string_view hex) {
  const std::optional<std::string> decoded = HexDecode(hex);
  if (!decoded) return std::nullopt;
  const std::string& raw = *decoded;
  const auto bar = raw.find('|');
  std::int64_t millis = 0;
  if (bar == std::string::npos || raw.size() < bar + 3 || raw[bar + 2] != '|' ||
      (raw[bar + 1] != 'd' && raw[bar + 1] != 'e') ||
      std::from_chars(raw.data(), raw.data() + bar, millis).ptr != raw.data() + bar) {
    return std::nullopt;
  }
  return HistoryCursor{FromUnixMillis(millis), raw[bar + 1] == 'd', raw.substr(bar + 3)};
}

namespace {

HistoryItem NoticeItem(const Notice& notice) {
  return {notice.at,
          true,
          std::string(NoticeName(notice.kind)) + ":" + notice.cause_id,
          NoticeName(notice.kind),
          "derived",
          notice.cause_id,
          std::nullopt};
}

HistoryItem StoredItem(HistoryEntry&& entry) {
  if (const auto* notice = std::get_if<NoticeFinalized>(&entry.event)) {
    return NoticeItem(NoticeOf(*notice));
  }
  HistoryItem item{EventTime(entry.event),
                   false,
                   std::move(entry.event_key),
                   EventKind(entry.event),
                   EventSourceName(entry.source),
                   EventId(entry.event),
                   std::nullopt};
  item.event = std::move(entry.event);
  return item;
}

// The live notices of a pair's state, as items.
std::vector<HistoryItem> LiveItems(const PairState& state, const HistoryQuery& query) {
  std::vector<HistoryItem> live;
  for (const Notice& notice : Notices(state, query.now, query.pair.limits)) {
    live.push_back(NoticeItem(notice));
  }
  return live;
}

// The page from the `count` latest stored entries up to the cursor's time, or nullopt when they
// do not reach far enough back to fill it (then read twice as many).
std::optional<HistoryPage> PageFrom(const std::vector<HistoryItem>& live,
                                    std::vector<HistoryEntry>& stored, int count,
                                    const HistoryQuery& query) {
  const bool all_read = static_cast<int>(stored.size()) < count;
  std::optional<Instant> oldest_read;
  std::vector<HistoryItem> items = live;
  for (HistoryEntry& entry : stored) {
    const Instant at = EventTime(entry.event);
    if (!oldest_read || at < *oldest_read) oldest_read = at;
    items.push_back(StoredItem(std::move(entry)));
  }
  std::sort(items.begin(), items.end(), NewerFirst{});
  auto first = items.begin();
  if (query.after) first = std::upper_bound(items.begin(), items.end(), *query.after, NewerFirst{});
  auto known_end = items.end();
  if (!all_read) {
    known_end = std::find_if(first, items.end(),
                             [&](const HistoryItem& item) { return item.at < *oldest_read; });
  }
  if (!all_read && known_end - first <= query.limit) return std::nullopt;  // read further back
  const auto last = first + std::min<std::ptrdiff_t>(query.limit, items.end() - first);
  HistoryPage page;
  if (last != items.end()) {
    const HistoryItem& end = *(last - 1);
    page.next = HistoryCursor{end.at, end.derived, end.key};
  }
  page.items.assign(std::make_move_iterator(first), std::make_move_iterator(last));
  return page;
}

Instant Until(const HistoryQuery& query) { return query.after ? query.after->at : Instant::max(); }

// One step of ReadHistoryAsync: reads `count` entries, then answers or reads twice as many.
struct AsyncHistoryRead : std::enable_shared_from_this<AsyncHistoryRead> {
  PairStore& store;
  HistoryQuery query;
  std::function<void(StoreResult<HistoryPage>)> done;
  std::vector<HistoryItem> live;

  AsyncHistoryRead(PairStore& s, HistoryQuery q, std::function<void(StoreResult<HistoryPage>)> d)
      : store(s), query(std::move(q)), done(std::move(d)) {}

  void Read(int count) {
    store.LoadHistoryUntilAsync(
        query.pair.key, Until(query), count,
        [self = shared_from_this(), count](StoreResult<std::vector<HistoryEntry>> stored) {
          if (!stored) return self->done(stored.error());
          auto page = PageFrom(self->live, *stored, count, self->query);
          if (!page) return self->Read(count * 2);
          self->done(std::move(*page));
        });
  }
};

}  // namespace

// A page is the stored entries at or before the cursor's time, read latest first through the
// store in growing batches, merged with the notices the pair's facts still give (the others were
// finalized into the history by compaction), in the page order. Only items no unread entry can
// precede are served: those at or after the time of the oldest entry read, unless everything
// was read.
StoreResult<HistoryPage> ReadHistory(PairStore& store, const HistoryQuery& query) {
  auto state = store.LoadPair(query.pair.key);
  if (!state) return state.error();
  const std::vector<HistoryItem> live = LiveItems(*state, query);
  for (int count = query.limit + 1;; count *= 2) {
    auto stored = store.LoadHistoryUntil(query.pair.key, Until(query), count);
    if (!stored) return stored.error();
    if (auto page = PageFrom(live, *stored, count, query)) return std::move(*page);
  }
}

void ReadHistoryAsync(PairStore& store, HistoryQuery query,
                      std::function<void(StoreResult<HistoryPage>)> done) {
  auto read = std::make_shared<AsyncHistoryRead>(store, std::move(query), std::move(done));
  const PairKey key = read->query.pair.key;
  store.LoadPairAsync(key, [read](StoreResult<PairState> state) {
    if (!state) return read->done(state.error());
    read->live = LiveItems(*state, read->query);
    read->Read(read->query.limit + 1);
  });
}

}  // namespace callgate

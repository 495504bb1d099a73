#include "pairs/history.h"

#include <algorithm>
#include <charconv>

#include "core/encoding.h"

namespace callgate {

namespace {

constexpr int kMaxEvents = 100000;  // a pair's history beyond this is not read back

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

StoreResult<HistoryPage> ReadHistory(PairStore& store, const HistoryQuery& query) {
  auto stored = store.LoadHistory(query.pair.key, 0, kMaxEvents);
  if (!stored) return stored.error();

  PairState whole;  // every recorded event, uncompacted: notices over the whole history
  std::vector<HistoryItem> items;
  items.reserve(stored->size());
  for (HistoryEntry& entry : *stored) {
    (void)Merge(whole, entry.event);
    items.push_back({EventTime(entry.event), false, std::move(entry.event_key),
                     EventKind(entry.event), EventSourceName(entry.source), EventId(entry.event),
                     std::move(entry.event)});
  }
  for (const Notice& notice : Notices(whole, query.now, query.pair.limits)) {
    items.push_back({notice.at, true, std::string(NoticeName(notice.kind)) + ":" + notice.cause_id,
                     NoticeName(notice.kind), "derived", notice.cause_id, std::nullopt});
  }
  std::sort(items.begin(), items.end(), NewerFirst{});

  auto first = items.begin();
  if (query.after) first = std::upper_bound(items.begin(), items.end(), *query.after, NewerFirst{});
  const auto last = first + std::min<std::ptrdiff_t>(query.limit, items.end() - first);
  HistoryPage page;
  if (last != items.end()) {
    const HistoryItem& end = *(last - 1);
    page.next = HistoryCursor{end.at, end.derived, end.key};
  }
  page.items.assign(std::make_move_iterator(first), std::make_move_iterator(last));
  return page;
}

}  // namespace callgate

// history_cursor_fuzz: DecodeHistoryCursor (src/pairs/history.h) on arbitrary text, and the page
// it names read by ReadHistory from a MemoryStore pair seeded once with weeks of events (equal
// times included, so ties are cut by key), then every following page.
// Asserts: a cursor that decodes re-encodes to text decoding to the same cursor; any cursor
// (time, kind, key) round-trips through EncodeHistoryCursor; a page holds at most `limit` items,
// newest first, each strictly older than its cursor, with a next cursor exactly when more
// follow, naming the page's last item; following the cursors never repeats an item.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz_check.h"
#include "pairs/history.h"
#include "store/memory/memory_store.h"

namespace callgate {
namespace {

const Instant kT0 = FromUnixSeconds(1'769'904'000);  // 2026-02-01T00:00:00Z
const PairRef kPair{{"chan", UserId::Phone("+6591234567")}, LimitsProfile::kProduction};

using fuzz::Check;

bool SameCursor(const HistoryCursor& a, const HistoryCursor& b) {
  return a.at == b.at && a.derived == b.derived && a.key == b.key;
}

auto Order(const HistoryItem& item) { return std::tie(item.at, item.derived, item.key); }
auto Order(const HistoryCursor& cursor) { return std::tie(cursor.at, cursor.derived, cursor.key); }

// Five weeks of one pair: replies, unanswered calls (notices), equal times, a callback.
MemoryStore& SeededStore() {
  static MemoryStore* const store = [] {
    auto* s = new MemoryStore();
    const auto day = [](int d) { return kT0 + std::chrono::hours(24 * d); };
    constexpr auto kBusiness = CallDirection::kBusinessInitiated;
    const std::vector<Event> events = {
        PermissionRequested{"r1", day(0)},
        PermissionReplied{"wamid.m1", day(0), true, false, std::nullopt, ReplySource::kUserAction},
        CallTerminated{"wacid.c1", day(1), kBusiness, false, std::nullopt, ""},
        CallRejected{"wacid.c2", day(1), ""},
        CallTerminated{"wacid.c3", day(2), kBusiness, false, std::nullopt, ""},
        CallTerminated{"wacid.c4", day(3), kBusiness, false, std::nullopt, ""},
        PermissionRequested{"r2", day(12)},
        PermissionReplied{"wamid.m2", day(12), true, true, std::nullopt, ReplySource::kAutomatic},
        CallConnected{"wacid.c5", day(13), kBusiness, "auth-1"},
        CallTerminated{"wacid.c5", day(13), kBusiness, true, day(13), "auth-1"},
        CallbackGranted{"wacid.c6", day(30)},
        CallTerminated{"wacid.c6", day(30), CallDirection::kUserInitiated, false, std::nullopt, ""},
        CallAuthorized{"auth-2", day(31), day(31) + std::chrono::seconds(90)},
    };
    for (const Event& event : events) {
      const auto status =
          UpdatePairSync(*s, kPair.key, [&](PairState& state, std::vector<HistoryEntry>& history) {
            (void)ApplyAndRecord(state, history, event, EventSource::kWebhook, kPair.limits);
            return true;
          });
      Check(status.ok(), "seeding failed");
    }
    return s;
  }();
  return *store;
}

void CheckPages(int limit, std::optional<HistoryCursor> after) {
  const Instant now = kT0 + std::chrono::hours(24 * 40);
  std::set<std::string> seen;
  for (int pages = 0; pages < 64; ++pages) {
    auto page = ReadHistory(SeededStore(), {kPair, limit, after, now});
    Check(page.ok(), "ReadHistory failed");
    Check(page->items.size() <= static_cast<std::size_t>(limit), "a page longer than its limit");
    for (std::size_t i = 0; i < page->items.size(); ++i) {
      const HistoryItem& item = page->items[i];
      Check(!after || Order(item) < Order(*after), "an item not older than its cursor");
      Check(i == 0 || Order(item) < Order(page->items[i - 1]), "a page not newest first");
      Check(seen.insert(item.key).second, "an item on two pages");
    }
    if (!page->next) return;
    Check(page->items.size() == static_cast<std::size_t>(limit), "a short page with a next");
    const HistoryItem& last = page->items.back();
    Check(SameCursor(*page->next, {last.at, last.derived, last.key}),
          "the next cursor does not name the last item");
    const auto decoded = DecodeHistoryCursor(EncodeHistoryCursor(*page->next));
    Check(decoded && SameCursor(*decoded, *page->next), "a next cursor does not round-trip");
    after = *decoded;
  }
  Check(false, "paging did not end");
}

}  // namespace
}  // namespace callgate

// Input: a byte whose low 3 bits are the page size less one; with bit 3 set, a cursor's parts
// follow (8 bytes of milliseconds, little-endian; a byte whose low bit is `derived`; the key),
// otherwise a cursor's text.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callgate;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const int limit = 1 + (data[0] & 7);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 8) != 0) {
    // Any cursor round-trips.
    std::uint64_t millis = 0;
    for (std::size_t i = 0; i < 8 && i < rest.size(); ++i) {
      millis |= std::uint64_t{static_cast<std::uint8_t>(rest[i])} << (8 * i);
    }
    rest.remove_prefix(std::min<std::size_t>(8, rest.size()));
    const bool derived = !rest.empty() && (rest[0] & 1) != 0;
    rest.remove_prefix(std::min<std::size_t>(1, rest.size()));
    const HistoryCursor cursor{FromUnixMillis(static_cast<std::int64_t>(millis)), derived,
                               std::string(rest)};
    const auto decoded = DecodeHistoryCursor(EncodeHistoryCursor(cursor));
    Check(decoded && SameCursor(*decoded, cursor), "a cursor does not round-trip");
    CheckPages(limit, cursor);
    return 0;
  }
  const auto cursor = DecodeHistoryCursor(rest);
  if (!cursor) return 0;
  const auto again = DecodeHistoryCursor(EncodeHistoryCursor(*cursor));
  Check(again && SameCursor(*again, *cursor), "a decoded cursor does not round-trip");
  CheckPages(limit, cursor);
  return 0;
}

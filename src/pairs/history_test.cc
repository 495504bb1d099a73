#include "pairs/history.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "core/test_time.h"
#include "store/memory/memory_store.h"

namespace callgate {
namespace {

using namespace test_time;  // NOLINT(google-build-using-namespace): kT0 and the time units
constexpr auto kBusiness = CallDirection::kBusinessInitiated;
constexpr LimitsProfile kProfile = LimitsProfile::kProduction;

Instant Day(int d) { return kT0 + hours(24 * d); }

// Six weeks of a pair's life: grants, unanswered runs (reconsider notices, an auto-revocation),
// expiries, callbacks — long enough that compaction finalizes the early notices.
std::vector<Event> SixWeeks() {
  return {
      PermissionRequested{"r1", Day(0)},
      PermissionReplied{"m1", Day(0) + hours(1), true, false, std::nullopt,
                        ReplySource::kUserAction},
      CallTerminated{"c1", Day(1), kBusiness, false, std::nullopt},
      CallRejected{"c2", Day(2)},
      CallTerminated{"c3", Day(3), kBusiness, false, std::nullopt},
      CallTerminated{"c4", Day(4), kBusiness, false, std::nullopt},
      PermissionRequested{"r2", Day(12)},
      PermissionReplied{"m2", Day(12) + hours(2), true, false, std::nullopt,
                        ReplySource::kUserAction},
      CallConnected{"c5", Day(13), kBusiness},
      CallTerminated{"c6", Day(14), kBusiness, false, std::nullopt},
      CallTerminated{"c7", Day(15), kBusiness, false, std::nullopt},
      CallbackGranted{"c8", Day(30)},
      CallTerminated{"c8", Day(30) + seconds(20), CallDirection::kUserInitiated, false,
                     std::nullopt},
      PermissionRequested{"r3", Day(40)},
  };
}

// One history item as the API shows it.
using Shown = std::tuple<std::string, std::string, std::string, std::string>;
Shown Show(const HistoryItem& item) {
  return {FormatMillis(item.at), std::string(item.kind), std::string(item.source),
          item.upstream_id};
}

// The whole history as it read before pages came from the store: every recorded event, and the
// notices of all of them folded together without compaction.
std::vector<Shown> WholeHistory(PairStore& store, const PairKey& key, Instant now) {
  auto entries = store.LoadHistory(key, 0, 1'000'000);
  EXPECT_TRUE(entries.ok());
  struct Item {
    Instant at;
    bool derived;
    std::string key;
    Shown shown;
  };
  std::vector<Item> items;
  PairState whole;
  for (const HistoryEntry& entry : *entries) {
    if (entry.source == EventSource::kDerived) continue;  // recorded notices: derived below
    (void)Merge(whole, entry.event);
    items.push_back({EventTime(entry.event),
                     false,
                     entry.event_key,
                     {FormatMillis(EventTime(entry.event)), std::string(EventKind(entry.event)),
                      std::string(EventSourceName(entry.source)), EventId(entry.event)}});
  }
  for (const Notice& n : Notices(whole, now, kProfile)) {
    const std::string name(NoticeName(n.kind));
    items.push_back(
        {n.at, true, name + ":" + n.cause_id, {FormatMillis(n.at), name, "derived", n.cause_id}});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.at, a.derived, a.key) > std::tie(b.at, b.derived, b.key);
  });
  std::vector<Shown> shown;
  for (const Item& item : items) shown.push_back(item.shown);
  return shown;
}

class ReadHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const Event& event : SixWeeks()) {
      ASSERT_TRUE(UpdatePairSync(store_, kPair.key, [event](PairState& state, auto& history) {
                    (void)ApplyAndRecord(state, history, event, EventSource::kWebhook, kProfile);
                    return true;
                  }).ok());
    }
  }

  // Every page of `limit` items, cursor after cursor.
  std::vector<Shown> Paged(int limit, Instant now) {
    std::vector<Shown> shown;
    std::optional<HistoryCursor> after;
    for (int pages = 0;; ++pages) {
      EXPECT_LT(pages, 100) << "pagination does not terminate";
      auto page = ReadHistory(store_, {kPair, limit, after, now});
      EXPECT_TRUE(page.ok());
      if (!page.ok() || pages >= 100) return shown;
      EXPECT_LE(static_cast<int>(page->items.size()), limit);
      for (const HistoryItem& item : page->items) shown.push_back(Show(item));
      if (!page->next) return shown;
      EXPECT_EQ(page->items.size(), static_cast<std::size_t>(limit));
      after = DecodeHistoryCursor(EncodeHistoryCursor(*page->next));
    }
  }

  MemoryStore store_;
  const PairRef kPair{{"ch", UserId::Phone("+6591234567")}, kProfile};
};

TEST_F(ReadHistoryTest, CompactionRecordedTheNoticesItFolded) {
  auto entries = store_.LoadHistory(kPair.key, 0, 1000);
  ASSERT_TRUE(entries.ok());
  const auto finalized = std::count_if(entries->begin(), entries->end(), [](const auto& entry) {
    return std::holds_alternative<NoticeFinalized>(entry.event);
  });
  EXPECT_GE(finalized, 2);  // at least the first reconsider notice and the auto-revocation
}

TEST_F(ReadHistoryTest, PagesOfAnySizeReadLikeTheWholeHistoryFolded) {
  for (const Instant now : {Day(40), Day(41), Day(60)}) {
    const std::vector<Shown> want = WholeHistory(store_, kPair.key, now);
    ASSERT_GT(want.size(), 15u);
    for (const int limit : {1, 2, 3, 4, 7, 50, 500}) {
      SCOPED_TRACE(testing::Message() << "limit " << limit << " now " << FormatMillis(now));
      EXPECT_EQ(Paged(limit, now), want);
    }
  }
}

TEST_F(ReadHistoryTest, AFirstPageReadsOnlyAsMuchAsItShows) {
  // The store, counting the history entries it hands out.
  struct Counting : PairStore {
    explicit Counting(PairStore& inner) : inner(inner) {}
    StoreStatus ProbeWrite() override { return inner.ProbeWrite(); }
    StoreResult<PairState> LoadPair(const PairKey& key) override { return inner.LoadPair(key); }
    void UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                          IdempotentMutation mutation, UpdateDone done) override {
      inner.UpdateIdempotent(key, std::move(idempotency_key), std::move(mutation), std::move(done));
    }
    void LinkUser(UserLink link, UpdateDone done) override {
      inner.LinkUser(std::move(link), std::move(done));
    }
    StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key, std::int64_t before,
                                                       int limit) override {
      auto entries = inner.LoadHistory(key, before, limit);
      if (entries.ok()) read += entries->size();
      return entries;
    }
    StoreResult<std::vector<HistoryEntry>> LoadHistoryUntil(const PairKey& key, Instant until,
                                                            int count) override {
      auto entries = inner.LoadHistoryUntil(key, until, count);
      if (entries.ok()) read += entries->size();
      return entries;
    }
    PairStore& inner;
    std::size_t read = 0;
  } counting(store_);
  auto page = ReadHistory(counting, {kPair, 2, std::nullopt, Day(40)});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 2u);
  EXPECT_LE(counting.read, 4u);
}

}  // namespace
}  // namespace callgate

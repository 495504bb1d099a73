// The deliverer (notify/deliverer.h) on a MemoryStore with a fake clock: a notification whose
// receiver cannot be reached is retried, then dropped once it has failed for 24 h; one whose
// account's URL was cleared is dropped at once.
#include "notify/deliverer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "notify/notifier.h"
#include "store/memory/memory_store.h"

namespace callgate {
namespace {

const Instant kT0 = FromUnixMillis(1'767'225'600'000);

class DelivererTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.CreateAccount({"acme", kT0}).ok());
    ASSERT_TRUE(store_.CreateSubaccount({"sub", "acme", kT0}).ok());
    ASSERT_TRUE(
        store_.CreateChannel({"ch", "sub", "1001", false, LimitsProfile::kProduction, kT0}).ok());
    // Port 1 on loopback: nobody listens, every POST fails at once.
    ASSERT_TRUE(store_.SetNotifyTarget("acme", NotifyTarget{"http://127.0.0.1:1/", "s"}).ok());
    ASSERT_TRUE(directory_.Start());
    store_.SetNotifier(MakeNotifier(directory_, clock_));
    DelivererOptions options{.poll = Millis(5)};
    options.observer = [this](const DeliveryReport& report) {
      std::lock_guard lock(mu_);
      reports_.push_back(report.outcome);
      cv_.notify_all();
    };
    deliverer_ = std::make_unique<Deliverer>(store_, store_, directory_, clock_, options);
  }
  void TearDown() override {
    deliverer_.reset();
    store_.SetNotifier(nullptr);
  }
  // A permanent grant from the profile: one notification, due now.
  void Grant() {
    const Event grant = PermissionReplied{"wamid.1", now(), true, true};
    ASSERT_TRUE(UpdatePairSync(store_, {"ch", UserId::Phone("+6591234567")},
                               [&](PairState& state, std::vector<HistoryEntry>& history) {
                                 return ApplyAndRecord(state, history, grant, EventSource::kWebhook,
                                                       LimitsProfile::kProduction) ==
                                        ApplyOutcome::kApplied;
                               })
                    .ok());
  }
  Instant now() const { return FromUnixMillis(now_ms_.load()); }
  // Waits for a report of `outcome`.
  bool WaitFor(DeliveryOutcome outcome) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::find(reports_.begin(), reports_.end(), outcome) != reports_.end();
    });
  }

  MemoryStore store_;
  TenantDirectory directory_{store_};
  std::atomic<std::int64_t> now_ms_{ToUnixMillis(kT0)};
  Clock clock_ = [this] { return now(); };
  std::unique_ptr<Deliverer> deliverer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<DeliveryOutcome> reports_;
};

TEST_F(DelivererTest, AnUnreachableReceiverIsRetriedThenDroppedAfter24Hours) {
  Grant();
  deliverer_->Start();
  ASSERT_TRUE(WaitFor(DeliveryOutcome::kRetried));
  EXPECT_EQ(*store_.PendingCount(), 1);
  now_ms_ += Millis(kHours24 + std::chrono::minutes(30)).count();
  ASSERT_TRUE(WaitFor(DeliveryOutcome::kDropped));
  EXPECT_EQ(*store_.PendingCount(), 0);
}

TEST_F(DelivererTest, ANotificationOfAnAccountWithoutUrlIsDroppedAtOnce) {
  Grant();
  ASSERT_TRUE(store_.SetNotifyTarget("acme", std::nullopt).ok());
  deliverer_->Start();
  ASSERT_TRUE(WaitFor(DeliveryOutcome::kDropped));
  EXPECT_EQ(*store_.PendingCount(), 0);
}

}  // namespace
}  // namespace callgate

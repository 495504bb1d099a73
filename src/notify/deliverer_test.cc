// The deliverer (notify/deliverer.h) on a MemoryStore with a fake clock: a notification whose
// receiver cannot be reached is retried, then dropped once it has failed for 24 h; one whose
// account's URL was cleared is dropped at once; a receiver that never answers holds up no other
// account's notifications.
#include "notify/deliverer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>

#include "log/log.h"
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
    deliverer_ = MakeDeliverer(store_);
  }
  // A deliverer of the store's notifications through `outbox` (polling every 5 ms unless
  // `options` say otherwise), whose reports WaitFor sees.
  std::unique_ptr<Deliverer> MakeDeliverer(NotificationOutbox& outbox,
                                           DelivererOptions options = {.poll = Millis(5)}) {
    options.observer = [this](const DeliveryReport& report) {
      std::lock_guard lock(mu_);
      reports_.push_back(report.outcome);
      cv_.notify_all();
    };
    return std::make_unique<Deliverer>(store_, outbox, directory_, clock_, options);
  }
  void TearDown() override {
    deliverer_.reset();
    store_.SetNotifier({});
  }
  // A permanent grant from the profile: one notification, due now.
  void Grant(const std::string& channel = "ch") {
    const Event grant = PermissionReplied{"wamid.1", now(), true, true};
    ASSERT_TRUE(UpdatePairSync(store_, {channel, UserId::Phone("+6591234567")},
                               [&](PairState& state, std::vector<HistoryEntry>& history) {
                                 return ApplyAndRecord(state, history, grant, EventSource::kWebhook,
                                                       LimitsProfile::kProduction) ==
                                        ApplyOutcome::kApplied;
                               })
                    .ok());
  }
  Instant now() const { return FromUnixMillis(now_ms_.load()); }
  // Waits for a report of `outcome`.
  bool WaitFor(DeliveryOutcome outcome, Millis timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
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

TEST_F(DelivererTest, AReceiverThatNeverAnswersHoldsUpNoOtherAccount) {
  // A listener that never accepts: the connection completes (the kernel's backlog) and the POST
  // waits for an answer until its timeout.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const std::string silent_url =
      "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/";
  ASSERT_TRUE(store_.CreateAccount({"slow", kT0}).ok());
  ASSERT_TRUE(store_.CreateSubaccount({"sub-slow", "slow", kT0}).ok());
  ASSERT_TRUE(
      store_.CreateChannel({"ch-slow", "sub-slow", "1002", false, LimitsProfile::kProduction, kT0})
          .ok());
  ASSERT_TRUE(store_.SetNotifyTarget("slow", NotifyTarget{silent_url, "s"}).ok());
  deliverer_ = MakeDeliverer(store_, {.poll = Millis(5), .timeout = std::chrono::seconds(4)});
  deliverer_->Start();
  Grant("ch-slow");  // its POST hangs for 4 s
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Grant();  // acme's receiver refuses at once: retried
  EXPECT_TRUE(WaitFor(DeliveryOutcome::kRetried, std::chrono::seconds(2)))
      << "another account's slow receiver held this one up";
  deliverer_.reset();  // ends the hanging POST at its timeout
}

// The store's outbox, but every settlement refused: as a store that fails under the deliverer.
class UnsettlingOutbox final : public NotificationOutbox {
 public:
  explicit UnsettlingOutbox(NotificationOutbox& inner) : inner_(inner) {}
  void SetNotifier(Notifier notifier) override { inner_.SetNotifier(std::move(notifier)); }
  StoreResult<std::vector<OutboxItem>> ClaimDue(Instant now, const std::string& owner, Millis lease,
                                                int limit) override {
    return inner_.ClaimDue(now, owner, lease, limit);
  }
  StoreStatus Settle(const std::string&, const std::string&, Settlement, Instant,
                     Instant) override {
    return StoreError::kUnavailable;
  }
  StoreResult<std::int64_t> PendingCount() override { return inner_.PendingCount(); }

 private:
  NotificationOutbox& inner_;
};

// A settlement the store refuses is logged with the eventId (the item will be sent again once its
// lease ends), never passed over in silence.
TEST_F(DelivererTest, ASettlementTheStoreRefusesIsLogged) {
  char path[] = "/tmp/deliverer-log-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ConfigureLog(LogFormat::kJson, fd);
  UnsettlingOutbox outbox(store_);
  deliverer_ = MakeDeliverer(outbox);
  Grant();
  deliverer_->Start();
  const bool retried = WaitFor(DeliveryOutcome::kRetried);
  deliverer_.reset();
  FlushLog();
  ConfigureLog(LogFormat::kText, 2);
  std::ifstream in(path);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  close(fd);
  std::remove(path);
  ASSERT_TRUE(retried);
  EXPECT_NE(log.find("notification not settled"), std::string::npos) << log;
  EXPECT_NE(log.find("\"error\":\"unavailable\""), std::string::npos) << log;
  EXPECT_EQ(*store_.PendingCount(), 1) << "still the store's, to be sent again";
}

}  // namespace
}  // namespace callgate

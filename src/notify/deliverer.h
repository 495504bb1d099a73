// Deliverer: sends the outbox's notifications (store/outbox.h) from inside `callgate serve`. One
// thread claims due items with a lease (so several processes on one store each deliver an item
// once), renders each payload from the pair as it is now (status at occurredAt), drops
// time-driven items that no longer hold, signs, POSTs items concurrently (one connection each, at
// most max_in_flight, claiming more while some are in flight), and settles each as it ends: 2xx
// delivered; otherwise retried with exponential back-off and jitter, and dropped (counted) once it
// is give_up_after old. An item held back by retries holds back its pair's later items (the
// outbox's claim order). Thread-safe: Start and Stop from any thread; the observer is called on the
// deliverer's thread.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/api.h"
#include "store/outbox.h"
#include "store/pair_store.h"
#include "tenants/directory.h"

namespace callgate {

// What became of one claimed item, for metrics.
enum class DeliveryOutcome {
  kSent,      // the receiver answered 2xx
  kRetried,   // failed (no answer or not 2xx); tried again later
  kDropped,   // failed for give_up_after, or its account has no target any more
  kObsolete,  // a time-driven item no longer true at its instant (renewed, revoked, ...)
};
inline constexpr int kDeliveryOutcomeCount = 4;
std::string_view DeliveryOutcomeName(DeliveryOutcome outcome);

struct DeliveryReport {
  DeliveryOutcome outcome;
  NotificationType type;
  bool attempted = false;  // a POST was made (its latency is meaningful)
  std::chrono::nanoseconds latency{};
};

struct DelivererOptions {
  Millis poll{200};  // how often the outbox is asked for due items: bounds the lateness
  Millis lease{30'000};
  int max_in_flight = 16;  // items (and so connections) in flight at once
  Millis timeout{10'000};  // per POST, everything included
  Millis first_retry{1'000};
  Millis max_retry{600'000};
  Millis give_up_after = kHours24;
  std::function<void(const DeliveryReport&)> observer;
};

class Deliverer {
 public:
  Deliverer(PairStore& pairs, NotificationOutbox& outbox, TenantDirectory& tenants, Clock clock,
            DelivererOptions options);
  ~Deliverer();  // Stop()
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  void Start();
  // Finishes the POSTs in flight (each bounded by the timeout), then returns.
  void Stop();

 private:
  struct Prepared;
  void Loop();
  // Renders and signs claimed items, or decides they are not sent (no target, no longer true).
  std::vector<std::shared_ptr<Prepared>> Prepare(std::vector<OutboxItem> items);
  // Settles one item as its POST (or Prepare) ended, and reports and logs it.
  void Finish(const Prepared& p);
  Instant RetryTime(Instant now, int attempts);
  void Report(DeliveryOutcome outcome, const OutboxItem& item, bool attempted,
              std::chrono::nanoseconds latency = {});

  PairStore& pairs_;
  NotificationOutbox& outbox_;
  TenantDirectory& tenants_;
  Clock clock_;
  DelivererOptions options_;
  std::string owner_;  // this process's lease name
  std::mt19937_64 jitter_;
  boost::asio::ssl::context tls_;  // the trust store, loaded once; the deliverer thread's

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace callgate

#include "notify/deliverer.h"

#include <openssl/rand.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <memory>
#include <optional>

#include "log/log.h"
#include "notify/http_post.h"
#include "notify/payload.h"
#include "notify/signature.h"

namespace callgate {

std::string_view DeliveryOutcomeName(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::kSent:
      return "sent";
    case DeliveryOutcome::kRetried:
      return "retried";
    case DeliveryOutcome::kDropped:
      return "dropped";
    case DeliveryOutcome::kObsolete:
      return "obsolete";
  }
  return "unknown";
}

namespace {

// A lease name unique to this process: random, so a restarted process never takes over the
// leases of the one it replaces (they simply run out).
std::string NewOwner() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "deliverer";
  char text[17];
  for (std::size_t i = 0; i < sizeof bytes; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

std::int64_t UnixSeconds(Instant t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

// One item ready to POST: where, what, signed by whom; or why it is not sent.
struct Deliverer::Prepared {
  OutboxItem item;
  std::string account;
  std::optional<NotifyUrl> url;
  std::string body;
  std::string signature;
  std::optional<DeliveryOutcome> settled;  // set: not POSTed (dropped or obsolete)
  PostResult result;
};

Deliverer::Deliverer(PairStore& pairs, NotificationOutbox& outbox, TenantDirectory& tenants,
                     Clock clock, DelivererOptions options)
    : pairs_(pairs),
      outbox_(outbox),
      tenants_(tenants),
      clock_(std::move(clock)),
      options_(std::move(options)),
      owner_(NewOwner()),
      jitter_(std::random_device{}()),
      tls_(MakeClientTlsContext()) {}

Deliverer::~Deliverer() { Stop(); }

void Deliverer::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Deliverer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Deliverer::Loop() {
  // POSTs run on this thread's io_context while claims go on: a receiver that takes its whole
  // timeout holds only its own items (and, through the outbox's order, its pairs' later ones),
  // never the others', so time-driven items stay within `poll` of their instant.
  boost::asio::io_context io;
  int in_flight = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    bool claimed_some = false;
    if (in_flight < options_.max_in_flight) {
      auto claimed =
          outbox_.ClaimDue(clock_(), owner_, options_.lease, options_.max_in_flight - in_flight);
      if (claimed.ok() && !claimed->empty()) {
        claimed_some = true;
        for (std::shared_ptr<Prepared>& p : Prepare(std::move(*claimed))) {
          if (p->settled || p->body.empty()) {
            Finish(*p);
            continue;
          }
          ++in_flight;
          PostNotification(io, tls_, *p->url, p->body, p->signature, options_.timeout,
                           [this, p, &in_flight](PostResult result) {
                             p->result = std::move(result);
                             Finish(*p);
                             --in_flight;
                           });
        }
      }
    }
    if (in_flight == 0) {
      if (claimed_some) continue;  // more may be due: ask again at once
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, options_.poll, [this] { return stopping_; });
      continue;
    }
    io.restart();
    if (claimed_some && in_flight < options_.max_in_flight) {
      io.poll();  // answers already in, then ask again at once
    } else {
      io.run_for(options_.poll);  // until the next poll, or every POST answered
    }
  }
  // Stopping: the POSTs in flight end (each within the timeout) and are settled.
  io.restart();
  io.run();
}

Instant Deliverer::RetryTime(Instant now, int attempts) {
  Millis delay = options_.max_retry;
  if (attempts < 30)
    delay = std::min(options_.max_retry, Millis(options_.first_retry.count() << attempts));
  // Full jitter over the upper half: receivers coming back are not hit by every sender at once.
  std::uniform_int_distribution<std::int64_t> half(delay.count() / 2, delay.count());
  return now + Millis(half(jitter_));
}

void Deliverer::Report(DeliveryOutcome outcome, const OutboxItem& item, bool attempted,
                       std::chrono::nanoseconds latency) {
  if (options_.observer) {
    options_.observer({outcome, item.notification.type, attempted, latency});
  }
}

std::vector<std::shared_ptr<Deliverer::Prepared>> Deliverer::Prepare(
    std::vector<OutboxItem> items) {
  const Instant now = clock_();
  const std::shared_ptr<const TenantSnapshot> tenants = tenants_.Current();
  std::vector<std::shared_ptr<Prepared>> batch;
  batch.reserve(items.size());
  for (OutboxItem& item : items) {
    auto p = std::make_shared<Prepared>(Prepared{std::move(item)});
    const Channel* channel = tenants->FindChannel(p->item.pair.channel_id);
    const NotifyTarget* target = tenants->FindNotifyTarget(p->item.pair.channel_id);
    if (channel) {
      if (const Subaccount* sub = tenants->FindSubaccount(channel->subaccount_id)) {
        p->account = sub->account_id;
      }
    }
    if (target) p->url = ParseNotifyUrl(target->url);
    auto state = pairs_.LoadPair(p->item.pair);
    if (!channel || !target || !p->url) {
      p->settled = DeliveryOutcome::kDropped;  // the account's notifications were turned off
    } else if (!state.ok()) {
      p->result.error = "cannot read the pair";  // retried like a failed POST
    } else if (!StillHolds(p->item.notification, *state, channel->limits)) {
      p->settled = DeliveryOutcome::kObsolete;
    } else {
      const StatusView view = View(*state, p->item.notification.occurred_at, channel->limits);
      p->body = RenderNotification(p->item, channel->subaccount_id, view);
      p->signature = SignNotification(UnixSeconds(now), p->body, target->SigningSecrets(now));
    }
    batch.push_back(std::move(p));
  }
  return batch;
}

void Deliverer::Finish(const Prepared& p) {
  const Instant settled_at = clock_();
  const OutboxItem& item = p.item;
  const std::string_view type = NotificationTypeName(item.notification.type);
  const int attempt = item.attempts + 1;
  const bool attempted = !p.settled && !p.body.empty();
  const auto latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(p.result.latency).count();
  // A settlement the store refuses leaves the item claimed: it is sent again (same eventId) once
  // its lease runs out. Said once here, as that duplicate would otherwise be unexplained.
  auto settle = [&](Settlement settlement, Instant retry_at) {
    const StoreStatus status =
        outbox_.Settle(item.event_id, owner_, settlement, settled_at, retry_at);
    if (status.ok()) return;
    Log(LogKind::kNotificationFailed, settled_at,
        "notification not settled: sent again once its lease ends",
        {{"eventId", item.event_id}, {"type", type}, {"error", StoreErrorName(status.error())}});
  };
  if (p.settled) {
    settle(Settlement::kDropped, settled_at);
    Report(*p.settled, item, false);
    if (*p.settled == DeliveryOutcome::kDropped) {
      Log(LogKind::kNotificationFailed, settled_at, "notification dropped",
          {{"eventId", item.event_id}, {"type", type}, {"reason", "no notification URL"}});
    }
    return;
  }
  if (p.result.status >= 200 && p.result.status < 300) {
    settle(Settlement::kDelivered, settled_at);
    Report(DeliveryOutcome::kSent, item, true, p.result.latency);
    Log(LogKind::kNotificationSent, settled_at, "notification sent",
        {{"eventId", item.event_id},
         {"type", type},
         {"account", p.account},
         {"attempt", attempt},
         {"status", p.result.status},
         LogField::Decimal("latencyMs", latency_us, 3)});
    return;
  }
  const std::string error =
      p.result.status != 0 ? "answered " + std::to_string(p.result.status) : p.result.error;
  // Failing for give_up_after: dropped and counted; else tried again after a back-off.
  const bool give_up = settled_at - item.notification.due_at >= options_.give_up_after;
  const Instant retry_at = give_up ? settled_at : RetryTime(settled_at, item.attempts);
  settle(give_up ? Settlement::kDropped : Settlement::kRetry, retry_at);
  Report(give_up ? DeliveryOutcome::kDropped : DeliveryOutcome::kRetried, item, attempted,
         p.result.latency);
  Log(LogKind::kNotificationFailed, settled_at,
      give_up ? "notification dropped after failing for 24 h" : "notification failed, will retry",
      {{"eventId", item.event_id},
       {"type", type},
       {"account", p.account},
       {"attempt", attempt},
       {"error", error},
       LogField::Decimal("retryInS", (retry_at - settled_at).count(), 3)});
}

}  // namespace callgate

// Metrics: the service's Prometheus metrics (prometheus-cpp's core library), served by the API at
// GET /metrics in the text exposition format. Only this layer knows Prometheus: the API tells it
// of every answered request (a RequestObserver) and of every stored webhook delivery's tally, the
// SQLite store of every group commit (a commit observer), and the HTTP server's connection counts
// and the pair cache's hits and misses are read when scraped.
//
// Every label value comes from a closed set named here or in the layers below (route templates,
// HTTP methods, the statuses and 8x8 codes the API answers with, outcome names), never from a
// request: no path, destination, BSUID, key or body reaches a label, and the number of series is
// bounded.
//
// Thread-safe. Observing a request takes no lock: each thread keeps the counters of the label
// sets it saw last (metrics.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "api/api.h"
#include "core/thread_cache.h"
#include "http/server.h"
#include "notify/deliverer.h"
#include "pairs/delivery.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

// What a scrape reads from the parts that count for themselves. Either may be unset (not
// exported).
struct MetricsSources {
  std::function<ConnectionStats()> connections;  // the main listener's
  std::function<PairCacheStats()> pair_cache;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Hooks this object into `api`: its request observer, its delivery observer and GET /metrics.
  // The Api must not outlive this.
  void Instrument(ApiOptions& api);
  // For SqliteStore::Options::commit_observer; the store must not outlive this.
  std::function<void(const CommitStats&)> CommitObserver();
  // Set once, before the first scrape.
  void SetSources(MetricsSources sources);

  void ObserveRequest(const RequestRecord& record);
  void ObserveDelivery(const DeliveryTally& tally);
  void ObserveCommit(const CommitStats& commit);
  // For DelivererOptions::observer.
  void ObserveNotification(const DeliveryReport& report);

  // Every metric in the text exposition format, version 0.0.4.
  std::string Scrape() const;

 private:
  struct Families;  // prometheus-cpp's objects, kept out of this header
  std::unique_ptr<Families> families_;
  MetricsSources sources_;
  CacheOwnerId cache_owner_;  // each thread's counters of recent label sets
};

// "notPermissionReply" -> "not_permission_reply": the webhook body's names as label values.
std::string SnakeCase(std::string_view name);

// Every field of a DeliveryTally (`Tally`, const or not), visited with the outcome it counts
// under and, for items that were not applied, the reason (empty otherwise). The one mapping of
// the tally to metrics: a new field of the tally gets a line here (metrics_test checks that every
// field has one, and one only).
template <class Tally, class Visit>
requires std::is_same_v<std::remove_const_t<Tally>, DeliveryTally>
void ForEachTallyCount(Tally& tally, Visit&& visit) {
  visit("applied", "", tally.applied);
  visit("duplicate", "", tally.duplicate);
  visit("settings_changed", "", tally.settings);
  visit("ignored", "too_late", tally.too_late);
  for (std::size_t i = 0; i < kIgnoreReasonCount; ++i) {
    visit("ignored", IgnoreReasonName(static_cast<IgnoreReason>(i)), tally.ignored_by[i]);
  }
  visit("ignored", "unknown_channel", tally.unknown_channel);
  visit("ignored", "invalid_user", tally.invalid_user);
  visit("ignored", "invalid_time", tally.invalid_time);
  visit("linked", "", tally.linked);
  visit("rotation", "", tally.rotations);
}

}  // namespace callgate

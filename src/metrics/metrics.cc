#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <vector>

namespace callgate {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Histogram;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// A request's duration: from tens of microseconds (a cached status read) to seconds (a durable
// write behind a slow disk).
const Histogram::BucketBoundaries kRequestSeconds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
// A group commit: an fsync takes 0.1 to 10 ms on most disks.
const Histogram::BucketBoundaries kCommitSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
// Writes per group commit: up to SqliteStore::Options::max_batch (1024).
const Histogram::BucketBoundaries kBatchWrites = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

// The method label: the methods HTTP defines for resources; any other (Beast's rarer verbs, an
// unknown method, "-" for a request refused before it was parsed) is "other".
constexpr std::string_view kMethods[] = {"GET",    "HEAD",  "POST",   "PUT",
                                         "DELETE", "PATCH", "OPTIONS"};
constexpr std::size_t kOtherMethod = std::size(kMethods);

// The labels of a request counter, reduced to bounded values, and a key that tells their sets
// apart: the route, the method's index, the status (0: outside 100-599, "other") and the code
// (0: none; 10000: outside 1-9999, "other").
struct RequestLabels {
  Route route;
  std::size_t method;
  unsigned status;
  unsigned code;

  static RequestLabels Of(const RequestRecord& r) {
    const auto known = std::find(std::begin(kMethods), std::end(kMethods), r.method);
    return {r.route, static_cast<std::size_t>(known - std::begin(kMethods)),
            r.status >= 100 && r.status <= 599 ? r.status : 0,
            r.code == 0                    ? 0u
            : r.code > 0 && r.code <= 9999 ? static_cast<unsigned>(r.code)
                                           : 10000u};
  }
  std::uint64_t key() const {
    return static_cast<std::uint64_t>(route) | method << 8 | std::uint64_t{status} << 16 |
           std::uint64_t{code} << 32;
  }
  prometheus::Labels labels() const {
    prometheus::Labels labels{
        {"route", std::string(RouteTemplate(route))},
        {"method", std::string(method < kOtherMethod ? kMethods[method] : "other")},
        {"status", status == 0 ? "other" : std::to_string(status)}};
    // Only an error envelope has a code: a label that does not apply is left out.
    if (code != 0) labels.emplace("code", code == 10000 ? "other" : std::to_string(code));
    return labels;
  }
};

// Each thread's counters of the label sets it counted last, direct-mapped by key: a request
// whose labels its thread saw before costs a multiplication and a compare, where
// Family::Add takes the family's mutex and hashes a map of label strings (600-1000 ns measured,
// 5-8 % of a status GET; README, Benchmarks).
struct RequestCounterMemo {
  struct Slot {
    std::uint64_t key = ~std::uint64_t{0};
    Counter* counter = nullptr;
  };
  static constexpr int kBits = 6;
  std::array<Slot, 1 << kBits> slots;
  Slot& SlotOf(std::uint64_t key) {
    return slots[(key * 0x9e3779b97f4a7c15ull) >> (64 - kBits)];  // Fibonacci hashing
  }
};

// The reservation outcomes counted: a 201, each refusal the endpoint can give (by its 8x8 code)
// and a store failure (500). A reservation endpoint's other answers (401, 400, ...) refused the
// request before any reservation was tried; they are counted among the requests only.
struct ReservationOutcome {
  Route route;
  unsigned status;
  int code;  // ignored for 500: any failure
  std::string_view outcome;
};
constexpr ReservationOutcome kReservationOutcomes[] = {
    {Route::kPermissionRequest, 201, 0, "201"},
    {Route::kPermissionRequest, 409, 1052, "1052"},
    {Route::kPermissionRequest, 429, 1053, "1053"},
    {Route::kPermissionRequest, 500, 0, "500"},
    {Route::kCall, 201, 0, "201"},
    {Route::kCall, 403, 1055, "1055"},
    {Route::kCall, 429, 1056, "1056"},
    {Route::kCall, 500, 0, "500"},
};

std::string_view ReservationKind(Route route) {
  return route == Route::kCall ? "call" : "permission_request";
}

// One sample of a value read when scraped.
prometheus::MetricFamily Sample(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  (type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
  return {std::move(name), std::move(help), type, {std::move(metric)}};
}

}  // namespace

struct Metrics::Families {
  prometheus::Registry registry;
  Family<prometheus::Gauge>& build_info =
      BuildGauge()
          .Name("callgate_build_info")
          .Help("Always 1; the version of the running callgate is its label")
          .Register(registry);
  Family<Counter>& requests =
      BuildCounter()
          .Name("callgate_http_requests_total")
          .Help(
              "Requests answered, by route template, method, status and (errors only) the 8x8 "
              "code of the error envelope")
          .Register(registry);
  Family<Histogram>& request_seconds =
      BuildHistogram()
          .Name("callgate_http_request_duration_seconds")
          .Help(
              "Seconds from a request reaching the API (parsed) to its answer being given, by "
              "route template; a durable write's answer is given once its commit is on disk")
          .Register(registry);
  std::array<Histogram*, kRouteCount> request_seconds_by_route{};
  Family<Counter>& reservations =
      BuildCounter()
          .Name("callgate_reservations_total")
          .Help(
              "Reservations tried, by kind (permission_request, call) and outcome: 201 "
              "reserved (idempotent replays included), the 8x8 code of a refusal (1052, 1053, "
              "1055, 1056) or 500 for a store failure")
          .Register(registry);
  std::array<Counter*, std::size(kReservationOutcomes)> reservation_counters{};
  Family<Counter>& webhook_items =
      BuildCounter()
          .Name("callgate_webhook_items_total")
          .Help(
              "Items of stored webhook deliveries, by outcome (applied, duplicate, "
              "settings_changed, ignored) and, for ignored ones, the reason")
          .Register(registry);
  std::vector<Counter*> webhook_item_counters;  // in ForEachTallyCount's order
  Histogram& commit_seconds =
      BuildHistogram()
          .Name("callgate_store_commit_duration_seconds")
          .Help(
              "Seconds a group commit took on the store's writer thread, from taking its locks "
              "to the batch committed: waiting for the locks, running every write, COMMIT")
          .Register(registry)
          .Add({}, kCommitSeconds);
  Histogram& commit_writes = BuildHistogram()
                                 .Name("callgate_store_commit_batch_size")
                                 .Help("Writes committed together by one group commit")
                                 .Register(registry)
                                 .Add({}, kBatchWrites);
  Histogram& commit_fsync_seconds =
      BuildHistogram()
          .Name("callgate_store_commit_fsync_seconds")
          .Help(
              "Seconds the COMMIT statement of a group commit took: SQLite writes the batch's "
              "pages to the WAL and fsyncs the WAL in it (synchronous=FULL), so this is the "
              "commit's write and fsync time")
          .Register(registry)
          .Add({}, kCommitSeconds);
  Family<Counter>& notifications =
      BuildCounter()
          .Name("callgate_notifications_total")
          .Help(
              "Claimed notifications by outcome: sent (2xx), retried (no answer or not 2xx; "
              "tried again later), dropped (failing for 24 h, or the account's URL cleared), "
              "obsolete (a scheduled one no longer true at its instant)")
          .Register(registry);
  std::array<Counter*, kDeliveryOutcomeCount> notification_counters{};
  Histogram& notification_seconds =
      BuildHistogram()
          .Name("callgate_notification_post_duration_seconds")
          .Help("Seconds one notification POST took, connect to response (failures included)")
          .Register(registry)
          .Add({}, kRequestSeconds);
};

Metrics::Metrics() : families_(std::make_unique<Families>()) {
  Families& f = *families_;
  f.build_info.Add({{"version", CALLGATE_VERSION}}).Set(1);
  // Every series whose label set is known in advance exists from the start (at 0), so the
  // request path never adds one and a dashboard sees every route before its first request.
  for (std::size_t route = 0; route < kRouteCount; ++route) {
    f.request_seconds_by_route[route] = &f.request_seconds.Add(
        {{"route", std::string(RouteTemplate(static_cast<Route>(route)))}}, kRequestSeconds);
  }
  for (std::size_t i = 0; i < std::size(kReservationOutcomes); ++i) {
    const ReservationOutcome& o = kReservationOutcomes[i];
    f.reservation_counters[i] = &f.reservations.Add(
        {{"kind", std::string(ReservationKind(o.route))}, {"outcome", std::string(o.outcome)}});
  }
  for (int i = 0; i < kDeliveryOutcomeCount; ++i) {
    f.notification_counters[i] = &f.notifications.Add(
        {{"outcome", std::string(DeliveryOutcomeName(static_cast<DeliveryOutcome>(i)))}});
  }
  const DeliveryTally none;
  ForEachTallyCount(none, [&](std::string_view outcome, std::string_view reason, int) {
    prometheus::Labels labels{{"outcome", std::string(outcome)}};
    if (!reason.empty()) labels.emplace("reason", SnakeCase(reason));
    f.webhook_item_counters.push_back(&f.webhook_items.Add(labels));
  });
}

std::string SnakeCase(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

Metrics::~Metrics() = default;

void Metrics::Instrument(ApiOptions& api) {
  api.observers.push_back([this](const RequestRecord& record) { ObserveRequest(record); });
  api.delivery_observer = [this](const DeliveryTally& tally) { ObserveDelivery(tally); };
  api.metrics = [this] { return Scrape(); };
}

std::function<void(const CommitStats&)> Metrics::CommitObserver() {
  return [this](const CommitStats& commit) { ObserveCommit(commit); };
}

void Metrics::SetSources(MetricsSources sources) { sources_ = std::move(sources); }

void Metrics::ObserveRequest(const RequestRecord& record) {
  Families& f = *families_;
  const RequestLabels labels = RequestLabels::Of(record);
  struct Tag;
  RequestCounterMemo::Slot& slot =
      ThreadCache<RequestCounterMemo, Tag>(cache_owner_.get()).SlotOf(labels.key());
  if (slot.key != labels.key()) slot = {labels.key(), &f.requests.Add(labels.labels())};
  slot.counter->Increment();
  f.request_seconds_by_route[static_cast<std::size_t>(record.route)]->Observe(
      Seconds(record.duration));
  if (record.route != Route::kPermissionRequest && record.route != Route::kCall) return;
  for (std::size_t i = 0; i < std::size(kReservationOutcomes); ++i) {
    const ReservationOutcome& o = kReservationOutcomes[i];
    if (o.route == record.route && o.status == record.status &&
        (o.status == 500 || o.code == record.code)) {
      f.reservation_counters[i]->Increment();
      return;
    }
  }
}

void Metrics::ObserveDelivery(const DeliveryTally& tally) {
  std::size_t i = 0;
  ForEachTallyCount(tally, [&](std::string_view, std::string_view, int count) {
    if (count > 0) families_->webhook_item_counters[i]->Increment(count);
    ++i;
  });
}

void Metrics::ObserveNotification(const DeliveryReport& report) {
  families_->notification_counters[static_cast<std::size_t>(report.outcome)]->Increment();
  if (report.attempted) families_->notification_seconds.Observe(Seconds(report.latency));
}

void Metrics::ObserveCommit(const CommitStats& commit) {
  families_->commit_seconds.Observe(Seconds(commit.duration));
  families_->commit_writes.Observe(static_cast<double>(commit.writes));
  families_->commit_fsync_seconds.Observe(Seconds(commit.commit));
}

std::string Metrics::Scrape() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families = families_->registry.Collect();
  if (sources_.connections) {
    const ConnectionStats c = sources_.connections();
    families.push_back(Sample("callgate_http_connections_open", "Connections open now",
                              MetricType::Gauge, static_cast<double>(c.open)));
    families.push_back(Sample("callgate_http_connections_accepted_total",
                              "Connections accepted and served", MetricType::Counter,
                              static_cast<double>(c.accepted)));
    families.push_back(Sample("callgate_http_connections_rejected_total",
                              "Connections closed as soon as they were accepted, because "
                              "--max-connections were open",
                              MetricType::Counter, static_cast<double>(c.rejected)));
  }
  if (sources_.pair_cache) {
    const PairCacheStats c = sources_.pair_cache();
    families.push_back(Sample("callgate_pair_cache_hits_total",
                              "Status reads whose pair state the cache held, current",
                              MetricType::Counter, static_cast<double>(c.hits)));
    families.push_back(Sample("callgate_pair_cache_misses_total",
                              "Status reads that looked in the pair cache and read the state "
                              "from the file (not cached, or changed since)",
                              MetricType::Counter, static_cast<double>(c.misses)));
  }
  // prometheus-cpp collects in no particular order (families by type, series by hash): sorted,
  // a scrape reads the same from one time to the next, for people and diffs alike.
  for (prometheus::MetricFamily& family : families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  std::sort(families.begin(), families.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace callgate

#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "metrics/exposition_test_util.h"

namespace callgate {
namespace {

// The label values of `label` over the samples of `name`.
std::set<std::string> LabelValues(const std::map<std::string, double>& samples,
                                  const std::string& name, const std::string& label) {
  std::set<std::string> values;
  const std::regex pattern(label + "=\"([^\"]*)\"");
  for (const auto& [series, value] : samples) {
    if (!series.starts_with(name + "{")) continue;
    std::smatch match;
    if (std::regex_search(series, match, pattern)) values.insert(match[1]);
  }
  return values;
}

RequestRecord Record(Route route, std::string_view method, unsigned status, int code = 0,
                     std::chrono::nanoseconds duration = std::chrono::microseconds(30)) {
  return {.method = method, .route = route, .status = status, .code = code, .duration = duration};
}

const std::string kStatusRoute(RouteTemplate(Route::kStatus));

// Every metric is there once a request was answered (the requests counter's series appear with
// their first request; every other series whose labels are known exists from the start).
TEST(MetricsTest, EveryMetricIsPresentAfterAScrape) {
  Metrics metrics;
  const auto connections = [] { return ConnectionStats{3, 10, 2}; };
  const auto pair_cache = [] { return PairCacheStats{7, 5}; };
  metrics.SetSources({.connections = connections, .pair_cache = pair_cache});
  metrics.ObserveRequest(Record(Route::kMetrics, "GET", 200));
  const std::string text = metrics.Scrape();
  for (const auto& [name, type] : std::vector<std::pair<std::string, std::string>>{
           {"callgate_build_info", "gauge"},
           {"callgate_http_requests_total", "counter"},
           {"callgate_http_request_duration_seconds", "histogram"},
           {"callgate_reservations_total", "counter"},
           {"callgate_webhook_items_total", "counter"},
           {"callgate_store_commit_duration_seconds", "histogram"},
           {"callgate_store_commit_batch_size", "histogram"},
           {"callgate_store_commit_fsync_seconds", "histogram"},
           {"callgate_http_connections_open", "gauge"},
           {"callgate_http_connections_accepted_total", "counter"},
           {"callgate_http_connections_rejected_total", "counter"},
           {"callgate_pair_cache_hits_total", "counter"},
           {"callgate_pair_cache_misses_total", "counter"}}) {
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
    EXPECT_NE(text.find("# TYPE " + name + " " + type + "\n"), std::string::npos) << name;
  }
  const auto samples = Samples(text);
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(\ncallgate_build_info\{version="\d+\.\d+\.\d+"\} 1\n)")))
      << text;
  EXPECT_EQ(samples.at("callgate_http_connections_open"), 3);
  EXPECT_EQ(samples.at("callgate_http_connections_accepted_total"), 10);
  EXPECT_EQ(samples.at("callgate_http_connections_rejected_total"), 2);
  EXPECT_EQ(samples.at("callgate_pair_cache_hits_total"), 7);
  EXPECT_EQ(samples.at("callgate_pair_cache_misses_total"), 5);
  // Series known in advance exist at 0 before anything happened: every route's latency, every
  // reservation outcome, every webhook item outcome.
  EXPECT_EQ(
      samples.at("callgate_http_request_duration_seconds_count{route=\"" + kStatusRoute + "\"}"),
      0);
  EXPECT_EQ(LabelValues(samples, "callgate_http_request_duration_seconds_count", "route").size(),
            kRouteCount - 1);  // the two webhook routes share their template
  EXPECT_EQ(samples.at("callgate_reservations_total{kind=\"call\",outcome=\"1056\"}"), 0);
  EXPECT_EQ(samples.at("callgate_webhook_items_total{outcome=\"ignored\",reason=\"too_late\"}"), 0);
  EXPECT_EQ(samples.at("callgate_webhook_items_total{outcome=\"applied\"}"), 0);
}

TEST(MetricsTest, RequestsAreCountedByRouteMethodStatusAndCode) {
  Metrics metrics;
  metrics.ObserveRequest(Record(Route::kStatus, "GET", 200));
  metrics.ObserveRequest(Record(Route::kStatus, "GET", 200, 0, std::chrono::milliseconds(3)));
  metrics.ObserveRequest(Record(Route::kStatus, "GET", 400, 1002));
  metrics.ObserveRequest(Record(Route::kUnmatched, "GET", 404, 1300));
  const auto samples = Samples(metrics.Scrape());
  const std::string status = "route=\"" + kStatusRoute + "\"";
  EXPECT_EQ(
      samples.at("callgate_http_requests_total{method=\"GET\"," + status + ",status=\"200\"}"), 2);
  EXPECT_EQ(samples.at("callgate_http_requests_total{code=\"1002\",method=\"GET\"," + status +
                       ",status=\"400\"}"),
            1);
  EXPECT_EQ(samples.at("callgate_http_requests_total{code=\"1300\",method=\"GET\",route="
                       "\"unmatched\",status=\"404\"}"),
            1);
  EXPECT_EQ(samples.at("callgate_http_request_duration_seconds_count{" + status + "}"), 3);
  EXPECT_EQ(
      samples.at("callgate_http_request_duration_seconds_bucket{" + status + ",le=\"0.0001\"}"), 2);
  EXPECT_NEAR(samples.at("callgate_http_request_duration_seconds_sum{" + status + "}"), 0.00306,
              1e-9);
}

// Whatever the records say, the labels take bounded values: methods from a fixed list, statuses
// 100-599, codes 1-9999, and "other" for anything else.
TEST(MetricsTest, LabelSetsAreBounded) {
  Metrics metrics;
  for (std::size_t route = 0; route < kRouteCount; ++route) {
    for (const std::string_view method : {"GET", "POST", "HEAD", "BREW", "-", "PROPFIND", ""}) {
      for (const unsigned status : {0u, 99u, 200u, 404u, 600u, 1000000u}) {
        for (const int code : {0, -1, 1300, 10000, 123456789}) {
          metrics.ObserveRequest(Record(static_cast<Route>(route), method, status, code));
        }
      }
    }
  }
  const auto samples = Samples(metrics.Scrape());
  const std::string name = "callgate_http_requests_total";
  EXPECT_EQ(LabelValues(samples, name, "method"),
            (std::set<std::string>{"GET", "POST", "HEAD", "other"}));
  EXPECT_EQ(LabelValues(samples, name, "status"), (std::set<std::string>{"200", "404", "other"}));
  EXPECT_EQ(LabelValues(samples, name, "code"), (std::set<std::string>{"1300", "other"}));
  std::set<std::string> routes;
  for (std::size_t route = 0; route < kRouteCount; ++route) {
    routes.insert(std::string(RouteTemplate(static_cast<Route>(route))));
  }
  EXPECT_EQ(LabelValues(samples, name, "route"), routes);
  // One series per template x 4 methods x 3 statuses x 3 codes (none, 1300, other).
  std::size_t series = 0;
  for (const auto& [key, value] : samples) series += key.starts_with(name + "{");
  EXPECT_EQ(series, routes.size() * 4 * 3 * 3);
}

// Each thread keeps its own counters of recent label sets; counts stay exact under
// concurrency, and two Metrics on one thread never share them.
TEST(MetricsTest, CountsAreExactAcrossThreadsAndInstances) {
  Metrics a, b;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        a.ObserveRequest(Record(Route::kStatus, "GET", 200));
        b.ObserveRequest(Record(Route::kStatus, "GET", 200));
        a.ObserveRequest(Record(Route::kHistory, "GET", i % 2 ? 200 : 400, i % 2 ? 0 : 1002));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto in_a = Samples(a.Scrape());
  const std::string ok =
      "callgate_http_requests_total{method=\"GET\",route=\"" + kStatusRoute + "\",status=\"200\"}";
  EXPECT_EQ(in_a.at(ok), 40000);
  EXPECT_EQ(Samples(b.Scrape()).at(ok), 40000);
  const std::string history(RouteTemplate(Route::kHistory));
  EXPECT_EQ(in_a.at("callgate_http_requests_total{code=\"1002\",method=\"GET\",route=\"" + history +
                    "\",status=\"400\"}"),
            20000);
}

TEST(MetricsTest, ReservationsAreCountedByKindAndOutcome) {
  Metrics metrics;
  metrics.ObserveRequest(Record(Route::kPermissionRequest, "POST", 201));
  metrics.ObserveRequest(Record(Route::kPermissionRequest, "POST", 409, 1052));
  metrics.ObserveRequest(Record(Route::kPermissionRequest, "POST", 429, 1053));
  metrics.ObserveRequest(Record(Route::kPermissionRequest, "POST", 500, 2000));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 201));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 201));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 403, 1055));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 429, 1056));
  // Refused before a reservation was tried: not a reservation outcome.
  metrics.ObserveRequest(Record(Route::kCall, "POST", 401, 1200));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 429, 429));
  metrics.ObserveRequest(Record(Route::kCall, "POST", 400, 1002));
  const auto samples = Samples(metrics.Scrape());
  const auto count = [&](const std::string& kind, const std::string& outcome) {
    return samples.at("callgate_reservations_total{kind=\"" + kind + "\",outcome=\"" + outcome +
                      "\"}");
  };
  EXPECT_EQ(count("permission_request", "201"), 1);
  EXPECT_EQ(count("permission_request", "1052"), 1);
  EXPECT_EQ(count("permission_request", "1053"), 1);
  EXPECT_EQ(count("permission_request", "500"), 1);
  EXPECT_EQ(count("call", "201"), 2);
  EXPECT_EQ(count("call", "1055"), 1);
  EXPECT_EQ(count("call", "1056"), 1);
  EXPECT_EQ(count("call", "500"), 0);
  EXPECT_EQ(LabelValues(samples, "callgate_reservations_total", "outcome").size(), 6u);
}

// ForEachTallyCount maps every field of the tally, each to its own series: a field added to
// DeliveryTally without its line there fails here.
TEST(MetricsTest, EveryTallyFieldHasItsOwnSeries) {
  DeliveryTally tally;
  int fields = 0;
  ForEachTallyCount(tally, [&](std::string_view, std::string_view, int) { ++fields; });
  static_assert(sizeof(DeliveryTally) % sizeof(int) == 0);
  EXPECT_EQ(fields, static_cast<int>(sizeof(DeliveryTally) / sizeof(int)))
      << "a DeliveryTally field lacks its line in ForEachTallyCount (metrics.h)";

  // Each field a distinct count, so a field visited twice (its first series would show the
  // second's count) shows.
  int next = 0;
  ForEachTallyCount(tally,
                    [&](std::string_view, std::string_view, int& count) { count = 1 << next++; });
  Metrics metrics;
  metrics.ObserveDelivery(tally);
  metrics.ObserveDelivery(tally);
  const auto samples = Samples(metrics.Scrape());
  std::set<double> seen;
  for (const auto& [series, value] : samples) {
    if (series.starts_with("callgate_webhook_items_total{")) seen.insert(value);
  }
  std::set<double> expected;
  for (int i = 0; i < fields; ++i) expected.insert(2.0 * (1 << i));
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(samples.at("callgate_webhook_items_total{outcome=\"applied\"}"), 2.0 * tally.applied);
  EXPECT_EQ(samples.at("callgate_webhook_items_total{outcome=\"ignored\",reason=\"unknown_"
                       "channel\"}"),
            2.0 * tally.unknown_channel);
}

TEST(MetricsTest, CommitsAreObserved) {
  Metrics metrics;
  const auto observe = metrics.CommitObserver();
  observe({.writes = 3,
           .duration = std::chrono::milliseconds(4),
           .commit = std::chrono::milliseconds(3)});
  observe({.writes = 100,
           .duration = std::chrono::milliseconds(20),
           .commit = std::chrono::milliseconds(2)});
  const auto samples = Samples(metrics.Scrape());
  EXPECT_EQ(samples.at("callgate_store_commit_batch_size_count"), 2);
  EXPECT_EQ(samples.at("callgate_store_commit_batch_size_sum"), 103);
  EXPECT_EQ(samples.at("callgate_store_commit_batch_size_bucket{le=\"4\"}"), 1);
  EXPECT_EQ(samples.at("callgate_store_commit_batch_size_bucket{le=\"128\"}"), 2);
  EXPECT_NEAR(samples.at("callgate_store_commit_duration_seconds_sum"), 0.024, 1e-9);
  EXPECT_EQ(samples.at("callgate_store_commit_duration_seconds_bucket{le=\"0.005\"}"), 1);
  EXPECT_NEAR(samples.at("callgate_store_commit_fsync_seconds_sum"), 0.005, 1e-9);
  EXPECT_EQ(samples.at("callgate_store_commit_fsync_seconds_bucket{le=\"0.0025\"}"), 1);
}

TEST(MetricsTest, InstrumentHooksTheApiOptions) {
  Metrics metrics;
  ApiOptions options;
  metrics.Instrument(options);
  ASSERT_EQ(options.observers.size(), 1u);
  ASSERT_TRUE(options.delivery_observer);
  ASSERT_TRUE(options.metrics);
  options.observers[0](Record(Route::kHealth, "GET", 200));
  options.delivery_observer(DeliveryTally{.applied = 2});
  const auto samples = Samples(options.metrics());
  EXPECT_EQ(samples.at("callgate_http_requests_total{method=\"GET\",route=\"/healthz\",status="
                       "\"200\"}"),
            1);
  EXPECT_EQ(samples.at("callgate_webhook_items_total{outcome=\"applied\"}"), 2);
}

}  // namespace
}  // namespace callgate

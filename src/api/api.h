// Api: routing and HTTP translation. Each endpoint parses its request, authenticates, resolves
// the pair, calls one use case (pairs/) and turns the typed result into a response; every error
// becomes HTTP in api/errors.cc. The transport (http/) knows nothing of this; this knows nothing
// of sockets or storage backends.
//
// Thread-safe: Handle() runs concurrently on the server's threads.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/errors.h"
#include "api/request_record.h"
#include "api/status_body.h"
#include "core/token_bucket.h"
#include "http/server.h"
#include "ingest/signature.h"
#include "pairs/delivery.h"
#include "pairs/history.h"
#include "pairs/status.h"
#include "store/pair_store.h"
#include "tenants/directory.h"
#include "tenants/tenant_store.h"

namespace callgate {

using Clock = std::function<Instant()>;

// How a request names its user: `destination` (E.164) or `channelUserId` (a BSUID), as given.
struct NamedUser {
  std::optional<std::string> destination;
  std::optional<std::string> channel_user_id;
};
// A GET's user, from its query string.
NamedUser NamedUserOf(std::string_view query);
// The name of the field that shows `user`: "destination" or "channelUserId".
std::string_view UserField(const UserId& user);

struct ApiOptions {
  double rate_limit_per_second = 0;             // per account; 0 disables
  double rate_limit_burst = 0;                  // 0: one second's worth
  std::vector<std::string> meta_app_secrets;    // webhook signing secrets (rotation: several)
  std::string meta_verify_token;                // subscription handshake token
  Millis call_hold = std::chrono::seconds(90);  // how long an authorisation holds a call slot
  std::vector<RequestObserver> observers;  // told of every answered request (access log, metrics)
  // Told of every webhook delivery once stored, with its tally (metrics); on a store thread.
  std::function<void(const DeliveryTally&)> delivery_observer;
  // GET /metrics: the metrics in Prometheus's text format. Unset: /metrics is not found (404).
  std::function<std::string()> metrics;
};

// What the endpoints read and write.
struct ApiStores {
  PairStore& pairs;
  TenantStore& tenant_store;  // webhooks change channel settings
  TenantDirectory& tenants;   // the request path's view of tenants
};

class Api {
 public:
  Api(ApiStores stores, Clock clock, ApiOptions options);

  // What a listener serves: every endpoint, or GET /metrics alone (--metrics-listen), where
  // every other path is not found.
  enum class Endpoints { kAll, kMetricsOnly };
  // Answers `request` through `respond`, with an X-Request-Id header, and tells the observers.
  void Handle(HttpRequest&& request, Respond respond, Endpoints endpoints = Endpoints::kAll);
  // The envelope for a request the transport refused (too large, malformed HTTP); observed as
  // Route::kRejected.
  HttpResponse Reject(boost::beast::http::status status);

 private:
  // One request on its way to its answer: what the observers and X-Request-Id need of it.
  struct Exchange {
    Instant at;
    std::chrono::steady_clock::time_point started;
    std::string_view method;  // static text (Beast's method names) or "-"
    Route route;
    RequestId id;
  };
  using Observers = std::vector<RequestObserver>;
  // `res` as answered: with X-Request-Id, the observers told. Static, with the observers shared:
  // an answer given after a store write may outlive nothing but what it holds.
  static HttpResponse Finish(const Observers& observers, const Exchange& exchange,
                             HttpResponse&& res);
  // `respond` for an answer given later (after a store write), finished as every answer is.
  Respond Deferred(Exchange exchange, Respond respond) const;
  Result<const Account*, ApiError> Authenticate(
      const HttpRequest& request, const std::shared_ptr<const TenantSnapshot>& tenants,
      Instant now);
  // The subaccount a request on a pair endpoint names, once the key authenticated and its
  // account owns the subaccount; found in `tenants`, which must outlive its use.
  Result<const Subaccount*, ApiError> OwnedSubaccount(
      const HttpRequest& request, const std::shared_ptr<const TenantSnapshot>& tenants,
      std::string_view subaccount_id, Instant now);
  // The channel `channel_id` if `sub` has it, else nullptr (404/1300).
  static const Channel* OwnedChannel(const TenantSnapshot& tenants, const Subaccount& sub,
                                     std::string_view channel_id);
  // The pair a request on a pair endpoint names, once its shared checks passed.
  Result<PairRef, ApiError> ResolvePair(const HttpRequest& request, std::string_view subaccount_id,
                                        std::string_view channel_id, const NamedUser& user,
                                        Instant now,
                                        std::optional<ApiError> body_error = std::nullopt);
  // The reads come in two forms: answered at once where the store's reads are local, and
  // answered through `respond` when its reads complete where they cross the network
  // (PairStore::ReadsAreRemote), so that a server thread never waits on one.
  HttpResponse GetCallPermissions(const HttpRequest& request, std::string_view subaccount_id,
                                  std::string_view channel_id, std::string_view query, Instant now);
  void GetCallPermissionsAsync(const HttpRequest& request, std::string_view subaccount_id,
                               std::string_view channel_id, std::string_view query, Instant now,
                               Respond respond);
  // GET .../callPermissions/history (api/history.cc): the query, or why it is refused.
  Result<HistoryQuery, ApiError> HistoryQueryOf(const HttpRequest& request,
                                                std::string_view subaccount_id,
                                                std::string_view channel_id, std::string_view query,
                                                Instant now);
  HttpResponse GetHistory(const HttpRequest& request, std::string_view subaccount_id,
                          std::string_view channel_id, std::string_view query, Instant now);
  void GetHistoryAsync(const HttpRequest& request, std::string_view subaccount_id,
                       std::string_view channel_id, std::string_view query, Instant now,
                       Respond respond);
  // POST .../callPermissions/batch (api/batch.cc): many users' status bodies in one answer.
  HttpResponse GetStatusBatch(const HttpRequest& request, std::string_view subaccount_id,
                              std::string_view channel_id, Instant now);
  void GetStatusBatchAsync(const HttpRequest& request, std::string_view subaccount_id,
                           std::string_view channel_id, Instant now, Respond respond);
  // POST .../callPermissionRequests and .../calls (api/reserve.cc).
  void Reserve(bool is_call, const HttpRequest& request, std::string_view subaccount_id,
               std::string_view channel_id, Instant now, Respond respond);
  HttpResponse VerifySubscription(std::string_view query, Instant now);
  void ReceiveWebhook(const HttpRequest& request, Instant now, Respond respond);
  HttpResponse Health(Instant now);
  HttpResponse Ready(Instant now);
  HttpResponse ServeMetrics(Instant now);

  ApiStores stores_;
  const bool remote_reads_;  // stores_.pairs.ReadsAreRemote(): reads answer asynchronously
  Clock clock_;
  ApiOptions options_;
  std::shared_ptr<const Observers> observers_;  // options_.observers
  MetaSignatures signatures_;                   // of options_.meta_app_secrets
  // Readiness is probed at most once a second; the last answer is kept meanwhile.
  std::mutex ready_mu_;
  std::optional<Instant> ready_checked_;
  StoreStatus ready_ = Ok{};
  std::mutex buckets_mu_;
  std::unordered_map<std::string, TokenBucket> buckets_;  // by account id
};

// A 200/201 JSON response.
HttpResponse JsonResponse(boost::beast::http::status status, std::string body);

}  // namespace callgate

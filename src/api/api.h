// Api: turns HTTP requests into calls on the store and tenants and back into responses. One
// method per endpoint; routing, authentication and the checks every pair endpoint shares live
// here once. The transport (http/) knows nothing of this; this knows nothing of sockets.
//
// Thread-safe: Handle() runs concurrently on the server's threads.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/errors.h"
#include "core/token_bucket.h"
#include "http/server.h"
#include "store/store.h"
#include "tenants/directory.h"

namespace callgate {

using Clock = std::function<Instant()>;

struct ApiOptions {
  double rate_limit_per_second = 0;  // per account; 0 disables
  double rate_limit_burst = 0;       // 0: one second's worth
};

class Api {
 public:
  Api(Store& store, TenantDirectory& tenants, Clock clock, ApiOptions options);

  void Handle(HttpRequest&& request, Respond respond);
  // The envelope for a request the transport refused (too large, malformed HTTP).
  HttpResponse Reject(boost::beast::http::status status);

 private:
  // A request on a pair endpoint after its shared checks passed.
  struct PairRequest {
    std::shared_ptr<const TenantSnapshot> tenants;
    const Account* account = nullptr;
    const Channel* channel = nullptr;
    PairKey key;
  };

  Result<const Account*, ApiError> Authenticate(const HttpRequest& request,
                                                const TenantSnapshot& tenants, Instant now);
  Result<PairRequest, ApiError> ResolvePair(const HttpRequest& request,
                                            std::string_view subaccount_id,
                                            std::string_view channel_id,
                                            const std::optional<std::string>& destination,
                                            Instant now);
  HttpResponse GetCallPermissions(const HttpRequest& request, std::string_view subaccount_id,
                                  std::string_view channel_id, std::string_view query, Instant now);
  HttpResponse Health(Instant now);

  Store& store_;
  TenantDirectory& tenants_;
  Clock clock_;
  ApiOptions options_;
  std::mutex buckets_mu_;
  std::unordered_map<std::string, TokenBucket> buckets_;  // by account id
};

// JSON for a status view: the 8x8 200 body, plus limitExpirationTime on reached limits.
std::string RenderStatus(const StatusView& view);

// A 200/201 JSON response.
HttpResponse JsonResponse(boost::beast::http::status status, std::string body);

}  // namespace callgate

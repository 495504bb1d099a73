// The one place errors become HTTP: the API's closed set of errors, what each lower layer's
// errors (refusals, destinations, storage, the transport) mean among them, and the mapping to
// HTTP status, 8x8 error code and message (docs/rules.md §6). Every status >= 400 the service sends
// is built here, in the 8x8 envelope {code, message, errorId, timestamp}, and every 5xx is logged
// here, once, with its errorId. Thread-safe.
#pragma once

#include <string_view>

#include "core/enforcement.h"
#include "core/store_error.h"
#include "core/time.h"
#include "http/server.h"
#include "pairs/destination.h"

namespace callgate {

enum class ApiError {
  kUnauthenticated,     // missing/unknown/revoked key, malformed Authorization
  kSubaccountNotOwned,  // unknown subaccount, or not the key's account's
  kDestinationMissing,
  kDestinationInvalid,    // not E.164
  kChannelUserIdInvalid,  // not a BSUID
  kUserAmbiguous,         // destination and channelUserId together
  kChannelNotFound,       // unknown, or not in that subaccount
  kTooManyRequests,       // the service's own protection
  kInternal,              // anything unexpected
  kNotReady,              // the store cannot take writes now (GET /readyz)
  kPathNotFound,
  kMethodNotAllowed,
  kBodyTooLarge,
  kHeadersTooLarge,
  kMalformedRequest,  // unparseable HTTP or JSON body
  // POST .../callPermissions/batch (api/batch.h).
  kBatchEmpty,     // no destinations and no channelUserIds
  kBatchTooLarge,  // more than kMaxBatchItems of them together
  // Enforcement endpoints (docs/rules.md §6, decisions).
  kPermanentPermissionExists,
  kRequestLimitReached,
  kNoLivePermission,
  kCallLimitReached,
  // Webhooks.
  kBadSignature,
  kBadVerifyToken,
};

struct ErrorDescription {
  boost::beast::http::status status;
  int code;
  std::string_view message;
};

ErrorDescription Describe(ApiError error);

// What the lower layers' errors are among the API's.
ApiError ErrorOf(Refusal refusal);
ApiError ErrorOf(DestinationError error);
ApiError ErrorOf(boost::beast::http::status transport_refusal);

// The envelope response for `error`, with a fresh errorId. `extra` (JSON members without braces,
// e.g. "\"limitExpirationTime\":\"...\"") is appended when non-empty. A 5xx is logged with its
// errorId and `cause` (what failed; never a phone number, BSUID or key).
HttpResponse ErrorResponse(ApiError error, Instant now, std::string_view extra = {},
                           std::string_view cause = {});

// A 500 for a store failure while doing `what`, logged.
HttpResponse StoreFailure(std::string_view what, StoreError error, Instant now);

}  // namespace callgate

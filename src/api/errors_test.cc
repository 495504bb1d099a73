#include "api/errors.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace callgate {
namespace {

namespace http = boost::beast::http;

// 8x8's platform registry (docs/rules.md §6): a client switching on `code` reads these meanings.
const std::map<int, std::string> kRegistry = {
    {1000, "Invalid parameter"},
    {1001, "Illegal SubAccountId"},
    {1002, "Invalid MSISDN"},
    {1003, "Invalid Encoding"},
    {1004, "Invalid Text"},
    {1005, "Invalid Source"},
    {1006, "Invalid Expiry"},
    {1007, "Invalid SMS Template"},
    {1008, "Invalid ID"},
    {1009, "Invalid Country Code"},
    {1010, "Parameter out of range"},
    {1200, "Unauthorized Access"},
    {1201, "Access forbidden"},
    {1300, "Not found"},
    {1400, "Resending interval violation"},
    {2000, "Internal Error"},
    {2001, "Function not implemented"},
    {2002, "Unsupported API version"},
};

struct Expected {
  ApiError error;
  http::status status;
  int code;
};

// Every ApiError, with the status and the code it must keep.
const Expected kExpected[] = {
    {ApiError::kUnauthenticated, http::status::unauthorized, 1200},
    {ApiError::kSubaccountNotOwned, http::status::bad_request, 1001},
    {ApiError::kDestinationMissing, http::status::bad_request, 1000},
    {ApiError::kDestinationInvalid, http::status::bad_request, 1002},
    {ApiError::kChannelNotFound, http::status::not_found, 1300},
    {ApiError::kTooManyRequests, http::status::too_many_requests, 429},
    {ApiError::kInternal, http::status::internal_server_error, 2000},
    {ApiError::kNotReady, http::status::service_unavailable, 2000},
    {ApiError::kPathNotFound, http::status::not_found, 1300},
    {ApiError::kMethodNotAllowed, http::status::method_not_allowed, 2001},
    {ApiError::kBodyTooLarge, http::status::payload_too_large, 1010},
    {ApiError::kHeadersTooLarge, http::status::request_header_fields_too_large, 1010},
    {ApiError::kMalformedRequest, http::status::bad_request, 1000},
    {ApiError::kBatchEmpty, http::status::bad_request, 1000},
    {ApiError::kBatchTooLarge, http::status::bad_request, 1010},
    {ApiError::kPermanentPermissionExists, http::status::conflict, 1052},
    {ApiError::kRequestLimitReached, http::status::too_many_requests, 1053},
    {ApiError::kNoLivePermission, http::status::forbidden, 1055},
    {ApiError::kCallLimitReached, http::status::too_many_requests, 1056},
    {ApiError::kBadSignature, http::status::unauthorized, 1200},
    {ApiError::kBadVerifyToken, http::status::forbidden, 1201},
};

TEST(ErrorsTest, EachErrorHasTheStatusAndCodeOfTheDecision) {
  for (const Expected& x : kExpected) {
    const ErrorDescription d = Describe(x.error);
    SCOPED_TRACE(d.message);
    EXPECT_EQ(d.status, x.status);
    EXPECT_EQ(d.code, x.code);
  }
}

// The enforcement codes are 8x8's delivery-receipt codes and 429 is 8x8's own throttling code;
// every other code must be a registry entry whose meaning fits, never 1003–1007 or 1400, which
// mean things (encoding, text, source, expiry, template, resending) the service never checks.
TEST(ErrorsTest, NoCodeTakesARegistryEntryForAnotherMeaning) {
  const std::set<int> kOwnCodes = {429, 1052, 1053, 1055, 1056};
  for (const Expected& x : kExpected) {
    const int code = Describe(x.error).code;
    SCOPED_TRACE(kRegistry.contains(code) ? kRegistry.at(code) : "8x8 delivery/throttling code");
    EXPECT_TRUE(kRegistry.contains(code) || kOwnCodes.contains(code)) << code;

    for (const int misleading : {1003, 1004, 1005, 1006, 1007, 1400}) {
      EXPECT_NE(code, misleading) << Describe(x.error).message;
    }
  }
}

TEST(ErrorsTest, TransportRefusalsMapToTheirErrors) {
  EXPECT_EQ(ErrorOf(http::status::payload_too_large), ApiError::kBodyTooLarge);
  EXPECT_EQ(ErrorOf(http::status::request_header_fields_too_large), ApiError::kHeadersTooLarge);
  EXPECT_EQ(ErrorOf(http::status::bad_request), ApiError::kMalformedRequest);
  EXPECT_EQ(ErrorOf(http::status::internal_server_error), ApiError::kInternal);
}

}  // namespace
}  // namespace callgate

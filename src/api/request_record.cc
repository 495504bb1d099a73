#include "api/request_record.h"

#include <algorithm>
#include <boost/uuid/random_generator.hpp>
#include <charconv>

namespace callgate {

std::string_view RouteTemplate(Route route) {
  switch (route) {
    case Route::kHealth:
      return "/healthz";
    case Route::kReady:
      return "/readyz";
    case Route::kOpenApi:
      return "/openapi.json";
    case Route::kMetrics:
      return "/metrics";
    case Route::kWebhookVerify:
    case Route::kWebhook:
      return "/webhooks/whatsapp";
    case Route::kStatus:
      return "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions";
    case Route::kHistory:
      return "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions/"
             "history";
    case Route::kStatusBatch:
      return "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions/"
             "batch";
    case Route::kPermissionRequest:
      return "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/"
             "callPermissionRequests";
    case Route::kCall:
      return "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/calls";
    case Route::kUnmatched:
      return "unmatched";
    case Route::kRejected:
      return "rejected";
  }
  return "unmatched";
}

bool RequestId::WellFormed(std::string_view id) {
  if (id.empty() || id.size() > kMaxLength) return false;
  // The id is logged with every request, so nothing that may name a user passes: a run of 10
  // digits or more (a phone number) or a BSUID's shape (two capitals and a dot: "US.1234").
  int digits = 0;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
    if (!upper && !digit && !(c >= 'a' && c <= 'z') && c != '.' && c != '_' && c != ':' &&
        c != '-') {
      return false;
    }
    digits = digit ? digits + 1 : 0;
    if (digits >= 10) return false;
    if (c == '.' && i >= 2 && id[i - 1] >= 'A' && id[i - 1] <= 'Z' && id[i - 2] >= 'A' &&
        id[i - 2] <= 'Z') {
      return false;
    }
  }
  return true;
}

RequestId RequestId::From(std::string_view header) {
  RequestId id;
  if (WellFormed(header)) {
    std::copy(header.begin(), header.end(), id.chars_.begin());
    id.size_ = header.size();
    return id;
  }
  // A UUID's last group (12 hex digits) holds a run of 10 decimal digits in about 1 draw in 40,
  // which would read as a phone number in the log: draw again until the id is well-formed itself.
  // Seeded once per thread from the system's entropy, then drawn in user space: an id needs to be
  // unique, not secret, and boost's random_generator called getrandom(2) for every request (one
  // system call a request, the only one besides its read and write; perf on bench/run.sh).
  thread_local boost::uuids::random_generator_mt19937 generator;
  constexpr char kHex[] = "0123456789abcdef";
  do {
    const boost::uuids::uuid uuid = generator();
    id.size_ = 0;
    for (std::size_t i = 0; i < uuid.size(); ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) id.chars_[id.size_++] = '-';
      id.chars_[id.size_++] = kHex[uuid.data[i] >> 4];
      id.chars_[id.size_++] = kHex[uuid.data[i] & 0xf];
    }
  } while (!WellFormed(id.view()));
  return id;
}

EnvelopeFields ReadEnvelope(std::string_view body) {
  constexpr std::string_view kCode = R"({"code":)";
  constexpr std::string_view kErrorId = R"("errorId":")";
  EnvelopeFields fields;
  if (!body.starts_with(kCode)) return fields;
  const char* digits = body.data() + kCode.size();
  std::from_chars(digits, body.data() + body.size(), fields.code);
  const auto at = body.find(kErrorId);
  if (at == std::string_view::npos) return fields;
  const auto start = at + kErrorId.size();
  const auto end = body.find('"', start);
  if (end != std::string_view::npos) fields.error_id = body.substr(start, end - start);
  return fields;
}

}  // namespace callgate

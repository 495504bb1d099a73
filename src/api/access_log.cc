#include "api/access_log.h"

#include <array>

#include "log/log.h"

namespace callgate {

RequestObserver AccessLog() {
  return [](const RequestRecord& r) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
    std::array<LogField, 8> fields{
        LogField("requestId", r.request_id),
        LogField("method", r.method),
        LogField("route", RouteTemplate(r.route)),
        LogField("status", static_cast<std::int64_t>(r.status)),
    };
    std::size_t n = 4;
    if (r.code != 0) fields[n++] = LogField("code", static_cast<std::int64_t>(r.code));
    if (!r.error_id.empty()) fields[n++] = LogField("errorId", r.error_id);
    fields[n++] = LogField::Decimal("durationMs", micros, 3);
    fields[n++] = LogField("bytes", static_cast<std::int64_t>(r.bytes));
    LogAccess(r.at, {fields.data(), n});
  };
}

}  // namespace callgate

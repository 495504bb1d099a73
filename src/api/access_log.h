// The access log: one line per answered request, written from what the API tells its observers
// (api/request_record.h) and nothing else, so a line can hold nothing a client chose but a
// well-formed X-Request-Id: never a path's ids, a query, a destination, a BSUID or a key.
//   text: 2026-02-01T08:12:30.123Z info access requestId=… method=GET
//   route=/api/v1/…/callPermissions
//         status=400 code=1002 errorId=… durationMs=0.087 bytes=151
//   json: {"time":…,"level":"info","msg":"access","requestId":…,"method":"GET","route":…,
//          "status":400,"code":1002,"errorId":…,"durationMs":0.087,"bytes":151}
// `time` is when the request reached the API (the clock of the envelope's timestamp); code and
// errorId only on an error, so a client's errorId finds its line; durationMs has µs precision;
// bytes counts the response body.
#pragma once

#include "api/request_record.h"

namespace callgate {

// The observer that writes the access line of each request (log/log.h, LogAccess).
RequestObserver AccessLog();

}  // namespace callgate

#include "api/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "log/log.h"

namespace callgate {
namespace {

// Runs `record` through the access log in `format`, into a file; the line written.
std::string AccessLine(LogFormat format, const RequestRecord& record) {
  std::FILE* file = std::tmpfile();
  ConfigureLog(format, ::fileno(file));
  AccessLog()(record);
  FlushLog();
  ConfigureLog(LogFormat::kText, STDERR_FILENO);
  std::string line(4096, '\0');
  line.resize(::pread(::fileno(file), line.data(), line.size(), 0));
  std::fclose(file);
  return line;
}

const RequestRecord kError{
    .at = *ParseTimestamp("2026-02-01T08:12:30.123Z"),
    .method = "GET",
    .route = Route::kStatus,
    .status = 400,
    .code = 1002,
    .error_id = "0d5c7b8e-1f0a-4c1e-9d55-6b2f3f1c9a01",
    .request_id = "r-1",
    .duration = std::chrono::nanoseconds(87'654),
    .bytes = 151,
};

TEST(AccessLogTest, AnErrorsLineHasItsCodeAndErrorId) {
  EXPECT_EQ(AccessLine(LogFormat::kJson, kError),
            R"({"time":"2026-02-01T08:12:30.123Z","level":"info","msg":"access","requestId":"r-1",)"
            R"("method":"GET","route":"/api/v1/whatsapp/subaccounts/{subAccountId}/channels/)"
            R"({channelId}/callPermissions","status":400,"code":1002,)"
            R"("errorId":"0d5c7b8e-1f0a-4c1e-9d55-6b2f3f1c9a01","durationMs":0.087,"bytes":151})"
            "\n");
  EXPECT_EQ(
      AccessLine(LogFormat::kText, kError),
      "2026-02-01T08:12:30.123Z info access requestId=r-1 method=GET "
      "route=/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions "
      "status=400 code=1002 errorId=0d5c7b8e-1f0a-4c1e-9d55-6b2f3f1c9a01 durationMs=0.087 "
      "bytes=151\n");
}

TEST(AccessLogTest, ASuccessHasNoCodeOrErrorId) {
  RequestRecord ok = kError;
  ok.route = Route::kHealth;
  ok.status = 200;
  ok.code = 0;
  ok.error_id = {};
  ok.duration = std::chrono::milliseconds(1234);
  EXPECT_EQ(AccessLine(LogFormat::kText, ok),
            "2026-02-01T08:12:30.123Z info access requestId=r-1 method=GET route=/healthz "
            "status=200 durationMs=1234.000 bytes=151\n");
}

TEST(AccessLogTest, ARefusedRequestIsLoggedUnderRejected) {
  RequestRecord rejected = kError;
  rejected.method = "-";
  rejected.route = Route::kRejected;
  rejected.status = 431;
  rejected.code = 1010;
  const std::string line = AccessLine(LogFormat::kText, rejected);
  EXPECT_NE(line.find(" method=- route=rejected status=431 code=1010 "), std::string::npos) << line;
}

}  // namespace
}  // namespace callgate

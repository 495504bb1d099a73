// Every answer carries X-Request-Id and is reported to the API's observers with its route
// template (never the raw path), status, code and errorId.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <mutex>

#include "test_server.h"

namespace callgate::testing {
namespace {

struct Seen {
  std::string method, route, request_id, error_id;
  unsigned status;
  int code;
  std::size_t bytes;
};

class RequestRecordE2eTest : public ::testing::Test {
 protected:
  static ApiOptions Observed(RequestRecordE2eTest* self) {
    ApiOptions options;
    options.observers.push_back([self](const RequestRecord& r) {
      std::lock_guard lock(self->mu_);
      self->seen_.push_back({std::string(r.method), std::string(RouteTemplate(r.route)),
                             std::string(r.request_id), std::string(r.error_id), r.status, r.code,
                             r.bytes});
    });
    return options;
  }
  void SetUp() override {
    key_ = server_.AddTenant("acct-a", "sub-a", "chan-a", "100000000000001");
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  Seen Last() {
    std::lock_guard lock(mu_);
    EXPECT_FALSE(seen_.empty());
    return seen_.empty() ? Seen{} : seen_.back();
  }

  std::mutex mu_;
  std::vector<Seen> seen_;
  TestServer server_{Observed(this)};
  std::string key_;
  std::unique_ptr<HttpClient> client_;
};

constexpr char kStatusPath[] =
    "/api/v1/whatsapp/subaccounts/sub-a/channels/chan-a/callPermissions?destination=%2B6500000000";

TEST_F(RequestRecordE2eTest, AClientRequestIdIsEchoedAndObservedWithTheRouteTemplate) {
  const Reply reply =
      client_->Get(kStatusPath, {{"Authorization", "Bearer " + key_}, {"X-Request-Id", "r-1"}});
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers.at("X-Request-Id"), "r-1");
  const Seen seen = Last();
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.route, RouteTemplate(Route::kStatus));
  EXPECT_EQ(seen.request_id, "r-1");
  EXPECT_EQ(seen.status, 200u);
  EXPECT_EQ(seen.code, 0);
  EXPECT_EQ(seen.bytes, reply.body.size());
}

TEST_F(RequestRecordE2eTest, AMalformedRequestIdIsReplacedAndAnErrorsIdAndCodeObserved) {
  const Reply reply = client_->Get(
      "/api/v1/whatsapp/subaccounts/sub-a/channels/chan-a/callPermissions?destination=12",
      {{"Authorization", "Bearer " + key_}, {"X-Request-Id", "bad id"}});
  ASSERT_EQ(reply.status, 400);
  const std::string id = reply.headers.at("X-Request-Id");
  EXPECT_NE(id, "bad id");
  EXPECT_TRUE(RequestId::WellFormed(id));
  simdjson::dom::parser parser;
  const std::string_view error_id = parser.parse(reply.body)["errorId"].get_string().value();
  const Seen seen = Last();
  EXPECT_EQ(seen.request_id, id);
  EXPECT_EQ(seen.code, 1002);
  EXPECT_EQ(seen.error_id, error_id);
}

TEST_F(RequestRecordE2eTest, UnknownPathsAndWrongMethodsAreObservedWithoutTheirPath) {
  EXPECT_EQ(client_->Get("/no/such/+6500000000").status, 404);
  EXPECT_EQ(Last().route, "unmatched");
  const Reply reply =
      client_->Send(boost::beast::http::verb::delete_, kStatusPath, {{"X-Request-Id", "d"}});
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(reply.headers.at("X-Request-Id"), "d");
  EXPECT_EQ(Last().route, RouteTemplate(Route::kStatus));
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().code, 2001);
}

TEST_F(RequestRecordE2eTest, DeferredAnswersAreObservedToo) {
  const Reply reply =
      client_->Send(boost::beast::http::verb::post,
                    "/api/v1/whatsapp/subaccounts/sub-a/channels/chan-a/callPermissionRequests",
                    {{"Authorization", "Bearer " + key_}, {"X-Request-Id", "post-1"}},
                    R"({"destination":"+6500000000"})");
  EXPECT_EQ(reply.headers.at("X-Request-Id"), "post-1");
  const Seen seen = Last();
  EXPECT_EQ(seen.request_id, "post-1");
  EXPECT_EQ(seen.route, RouteTemplate(Route::kPermissionRequest));
  EXPECT_EQ(seen.status, static_cast<unsigned>(reply.status));
}

}  // namespace
}  // namespace callgate::testing

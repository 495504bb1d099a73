// GET /metrics over HTTP: a known sequence of requests moves exactly the counters it should, the
// --metrics-listen listener serves /metrics and nothing else, and no phone number, BSUID, key or
// tenant id ever reaches the exposition.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "meta_payloads.h"
#include "metrics/exposition_test_util.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

namespace http = boost::beast::http;

constexpr char kSecret[] = "secret";
constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
const meta::Business kBiz{"106540352242922", "15550783881"};
const meta::Business kUnknownBiz{"999999999999999", "15550009999"};
const std::string kPair = "/api/v1/whatsapp/subaccounts/sub-m/channels/chan-m";
const std::string kStatusRoute(RouteTemplate(Route::kStatus));

class MetricsE2eTest : public ::testing::Test {
 protected:
  MetricsE2eTest() : server_({.meta_app_secrets = {kSecret}}) {}
  void SetUp() override {
    key_ = server_.AddTenant("acct-m", "sub-m", "chan-m", kBiz.phone_number_id);
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  std::map<std::string, std::string> Auth() { return {{"Authorization", "Bearer " + key_}}; }
  std::string Scrape() {
    const Reply reply = client_->Get("/metrics");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.content_type, kContentType);
    return reply.body;
  }
  Reply Post(const std::string& path, const std::string& body) {
    return client_->Send(http::verb::post, kPair + path, Auth(), body);
  }

  TestServer server_;
  std::string key_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(MetricsE2eTest, AKnownSequenceMovesExactlyItsCounters) {
  const auto before = Samples(Scrape());

  const std::string status = kPair + "/callPermissions?destination=%2B6591234567";
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client_->Get(status, Auth()).status, 200);
  ASSERT_EQ(client_->Get(kPair + "/callPermissions?destination=12", Auth()).status, 400);
  ASSERT_EQ(client_->Get("/no/such/path").status, 404);
  // One delivery: a permanent accept (applied), a text message (ignored: says nothing about
  // call permissions) and a reply for a phone_number_id no channel has.
  const Instant now = server_.Now();
  meta::PermissionReply accept{.wamid = "wamid.m1", .from = "6591230001", .at = now};
  accept.is_permanent = true;
  const meta::TextMessage text{.wamid = "wamid.m2", .from = "6591230002", .at = now};
  const meta::PermissionReply elsewhere{.wamid = "wamid.m3", .from = "6591230003", .at = now};
  const Reply delivered =
      client_->PostWebhook(meta::Envelope({meta::Entry({meta::Change(kBiz, {accept, text}),
                                                        meta::Change(kUnknownBiz, {elsewhere})})}),
                           kSecret);
  ASSERT_EQ(delivered.status, 200);
  EXPECT_EQ(delivered.body,
            R"({"applied":1,"duplicate":0,"tooLate":0,"ignored":1,"unknownChannel":1,)"
            R"("invalidUser":0,"invalidTime":0,"settingsChanged":0,"usersLinked":0,"rotations":0,)"
            R"("ignoredByReason":{"notPermissionReply":1}})");
  ASSERT_EQ(Post("/callPermissionRequests", R"({"destination":"+6591230009"})").status, 201);
  ASSERT_EQ(Post("/callPermissionRequests", R"({"destination":"+6591230001"})").status, 409);
  ASSERT_EQ(Post("/calls", R"({"destination":"+6591230009"})").status, 403);

  const auto after = Samples(Scrape());
  const auto moved = [&](const std::string& series) {
    const auto was = before.find(series);
    const auto is = after.find(series);
    return (is == after.end() ? 0 : is->second) - (was == before.end() ? 0 : was->second);
  };
  const std::string requests = "callgate_http_requests_total";
  const std::string on_status = ",route=\"" + kStatusRoute + "\"";
  EXPECT_EQ(moved(requests + "{method=\"GET\"" + on_status + ",status=\"200\"}"), 3);
  EXPECT_EQ(moved(requests + "{code=\"1002\",method=\"GET\"" + on_status + ",status=\"400\"}"), 1);
  EXPECT_EQ(moved(requests + "{code=\"1300\",method=\"GET\",route=\"unmatched\",status=\"404\"}"),
            1);
  EXPECT_EQ(moved(requests + R"({method="POST",route="/webhooks/whatsapp",status="200"})"), 1);
  const std::string requests_route(RouteTemplate(Route::kPermissionRequest));
  const std::string calls_route(RouteTemplate(Route::kCall));
  EXPECT_EQ(moved(requests + "{method=\"POST\",route=\"" + requests_route + "\",status=\"201\"}"),
            1);
  EXPECT_EQ(moved(requests + "{code=\"1052\",method=\"POST\",route=\"" + requests_route +
                  "\",status=\"409\"}"),
            1);
  EXPECT_EQ(moved(requests + "{code=\"1055\",method=\"POST\",route=\"" + calls_route +
                  "\",status=\"403\"}"),
            1);
  // The first scrape is counted; the second is answered before it is.
  EXPECT_EQ(moved(requests + R"({method="GET",route="/metrics",status="200"})"), 1);
  double all = 0;
  for (const auto& [series, value] : after) {
    if (series.starts_with(requests + "{")) all += moved(series);
  }
  EXPECT_EQ(all, 3 + 1 + 1 + 1 + 3 + 1);

  EXPECT_EQ(moved("callgate_http_request_duration_seconds_count{route=\"" + kStatusRoute + "\"}"),
            4);
  EXPECT_EQ(moved("callgate_http_request_duration_seconds_count{route=\"" + requests_route + "\"}"),
            2);
  EXPECT_EQ(moved(R"(callgate_reservations_total{kind="permission_request",outcome="201"})"), 1);
  EXPECT_EQ(moved(R"(callgate_reservations_total{kind="permission_request",outcome="1052"})"), 1);
  EXPECT_EQ(moved(R"(callgate_reservations_total{kind="call",outcome="1055"})"), 1);
  EXPECT_EQ(moved(R"(callgate_reservations_total{kind="call",outcome="201"})"), 0);
  EXPECT_EQ(moved(R"(callgate_webhook_items_total{outcome="applied"})"), 1);
  EXPECT_EQ(
      moved(R"(callgate_webhook_items_total{outcome="ignored",reason="not_permission_reply"})"), 1);
  EXPECT_EQ(moved(R"(callgate_webhook_items_total{outcome="ignored",reason="unknown_channel"})"),
            1);
  EXPECT_EQ(moved(R"(callgate_webhook_items_total{outcome="duplicate"})"), 0);
  // The delivery and the three reservations were written; however they were batched, every
  // write was committed, and each commit took some time.
  EXPECT_GE(moved("callgate_store_commit_batch_size_count"), 1);
  EXPECT_EQ(moved("callgate_store_commit_batch_size_sum"), 1 + 3);
  EXPECT_GT(moved("callgate_store_commit_duration_seconds_sum"), 0);
  EXPECT_GT(moved("callgate_store_commit_fsync_seconds_sum"), 0);
  // Three status reads of one pair: the first loads it from the file, the others find it.
  EXPECT_EQ(moved("callgate_pair_cache_misses_total"), 1);
  EXPECT_EQ(moved("callgate_pair_cache_hits_total"), 2);
  EXPECT_EQ(after.at("callgate_http_connections_open"), 1);
  EXPECT_EQ(after.at("callgate_http_connections_accepted_total"), 1);
  EXPECT_EQ(after.at("callgate_http_connections_rejected_total"), 0);
}

// Requests carrying a phone number, a BSUID, an API key and tenant ids, in every place a request
// can carry them: none reaches the exposition.
TEST_F(MetricsE2eTest, NoPhoneNumberBsuidKeyOrIdReachesTheExposition) {
  const std::string phone = "6591234567";
  const std::string bsuid = "US.1234567890123456789";
  const std::string fake_key = "cgk_0123456789abcdef_" + std::string(43, 'x');
  client_->Get(kPair + "/callPermissions?destination=%2B" + phone, Auth());
  client_->Get(kPair + "/callPermissions?destination=" + bsuid, Auth());
  client_->Get(kPair + "/callPermissions?destination=%2B" + phone,
               {{"Authorization", "Bearer " + fake_key}, {"X-Request-Id", bsuid}});
  client_->Get("/" + phone + "/" + bsuid + "/" + fake_key);
  client_->Get("/metrics?destination=%2B" + phone + "&user=" + bsuid);
  Post("/calls", R"({"destination":"+)" + phone + R"(","bsuid":")" + bsuid + R"("})");
  Post("/callPermissionRequests",
       R"({"destination":"+)" + phone + R"(","messageId":"wamid.)" + bsuid + R"("})");
  const meta::PermissionReply by_bsuid{.wamid = "wamid.b1", .from = bsuid, .at = server_.Now()};
  const meta::PermissionReply by_phone{.wamid = "wamid.b2", .from = phone, .at = server_.Now()};
  client_->PostWebhook(meta::Batch(kBiz, {by_bsuid, by_phone}), kSecret);
  client_->PostWebhook(meta::Payload(kUnknownBiz, by_phone), kSecret);

  const std::string text = Scrape();
  for (const std::string& secret :
       {phone, bsuid, std::string("1234567890123456789"), key_, key_.substr(0, 20),
        fake_key.substr(0, 20), std::string("sub-m"), std::string("chan-m"), std::string("acct-m"),
        kBiz.phone_number_id, kUnknownBiz.phone_number_id, std::string("wamid")}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in\n" << text;
  }
}

// What a client on the metrics listener gets for a path other than /metrics. Read without being
// recorded for the contract check: the API description describes the main listener, where these
// paths answer otherwise.
Reply Unrecorded(HttpClient& client, const std::string& method, const std::string& path) {
  client.WriteRaw(method + " " + path +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
  return client.Read();
}

TEST(MetricsListenerE2eTest, ServesMetricsAndNothingElse) {
  TestServer server({}, {}, SqliteStore::Options{}.cache_bytes,
                    ServerOptions{.address = "127.0.0.1", .threads = 1});
  ASSERT_NE(server.metrics_port(), 0);
  ASSERT_NE(server.metrics_port(), server.port());
  const std::string key = server.AddTenant("acct-l", "sub-l", "chan-l", "106540352242999");
  HttpClient metrics(server.metrics_port());
  const Reply scraped = metrics.Get("/metrics");
  EXPECT_EQ(scraped.status, 200);
  EXPECT_EQ(scraped.content_type, kContentType);
  EXPECT_NE(scraped.body.find("# TYPE callgate_build_info gauge"), std::string::npos);

  for (const std::string path : {"/healthz", "/openapi.json", "/webhooks/whatsapp",
                                 "/api/v1/whatsapp/subaccounts/sub-l/channels/chan-l/"
                                 "callPermissions?destination=%2B6591234567",
                                 "/nothing"}) {
    const Reply reply = Unrecorded(metrics, "GET", path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(reply.content_type, "application/json") << path;
    EXPECT_TRUE(reply.body.starts_with(R"({"code":1300,)")) << reply.body;
  }
  const Reply post = Unrecorded(metrics, "POST", "/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers.at("Allow"), "GET");

  // The main listener still serves everything, /metrics included, and counts its connections
  // only: the metrics listener's one connection is not among them.
  HttpClient main(server.port());
  EXPECT_EQ(main.Get("/healthz").status, 200);
  const auto samples = Samples(main.Get("/metrics").body);
  EXPECT_EQ(samples.at("callgate_http_connections_accepted_total"), 1);
  // Requests on either listener are counted by what they matched.
  EXPECT_EQ(
      samples.at(
          R"(callgate_http_requests_total{code="1300",method="GET",route="unmatched",status="404"})"),
      5);
  EXPECT_EQ(
      samples.at(R"(callgate_http_requests_total{method="GET",route="/metrics",status="200"})"), 1);
}

}  // namespace
}  // namespace callgate::testing

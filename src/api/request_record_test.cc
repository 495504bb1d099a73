#include "api/request_record.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace callgate {
namespace {

TEST(RequestIdTest, AWellFormedClientIdIsKept) {
  EXPECT_EQ(RequestId::From("abc-123_x.y:z").view(), "abc-123_x.y:z");
  EXPECT_EQ(RequestId::From("req-123456789").view(), "req-123456789");  // 9 digits
  EXPECT_EQ(RequestId::From("A.1-Us.2").view(), "A.1-Us.2");
  const std::string longest(RequestId::kMaxLength, 'a');
  EXPECT_EQ(RequestId::From(longest).view(), longest);
}

TEST(RequestIdTest, AnythingElseGetsAFreshUuid) {
  std::set<std::string> seen;
  const std::vector<std::string> bad_ids = {"",
                                            "has space",
                                            "new\nline",
                                            "quote\"",
                                            "{json}",
                                            "+6512345678",
                                            "6591234567",
                                            "US.13491208655302741918",
                                            "id-US.ENT.1",
                                            std::string(RequestId::kMaxLength + 1, 'a')};
  for (const std::string& bad : bad_ids) {
    const std::string id(RequestId::From(bad).view());
    ASSERT_EQ(id.size(), 36u) << bad;
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '4');  // version 4
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10u);  // each fresh
}

TEST(RequestIdTest, AFreshIdIsItselfWellFormed) {
  // Random hex holds a run of 10 decimal digits now and then (a phone number's shape, which the
  // log must not carry); a fresh id never does.
  for (int i = 0; i < 20000; ++i) {
    const RequestId id = RequestId::From("");
    ASSERT_TRUE(RequestId::WellFormed(id.view())) << id.view();
  }
}

TEST(ReadEnvelopeTest, ReadsCodeAndErrorIdOfAnEnvelope) {
  const EnvelopeFields fields = ReadEnvelope(
      R"({"code":1002,"message":"m","errorId":"6f1c-aa","timestamp":"2026-01-01T00:00:00.000Z"})");
  EXPECT_EQ(fields.code, 1002);
  EXPECT_EQ(fields.error_id, "6f1c-aa");
}

TEST(ReadEnvelopeTest, AnyOtherBodyHasNoCode) {
  EXPECT_EQ(ReadEnvelope(R"({"status":"ok"})").code, 0);
  EXPECT_EQ(ReadEnvelope("").code, 0);
  EXPECT_TRUE(ReadEnvelope(R"({"code":12)").error_id.empty());
}

TEST(RouteTemplateTest, EveryRouteHasADistinctTemplateButTheWebhooksShareOne) {
  std::set<std::string_view> templates;
  for (std::size_t i = 0; i < kRouteCount; ++i) {
    const std::string_view t = RouteTemplate(static_cast<Route>(i));
    EXPECT_EQ(t.find('+'), std::string_view::npos);
    templates.insert(t);
  }
  EXPECT_EQ(templates.size(), kRouteCount - 1);
  EXPECT_EQ(RouteTemplate(Route::kStatus),
            "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions");
}

}  // namespace
}  // namespace callgate

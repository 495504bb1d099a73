#include "api/batch.h"

#include <gtest/gtest.h>

#include <string>

namespace callgate {
namespace {

using Views = std::vector<std::string_view>;

class BatchBodyTest : public ::testing::Test {
 protected:
  Result<BatchBody, ApiError> Parse(const std::string& body) {
    return ParseBatchBody(parser_, body);
  }
  // A body of `n` destinations (and `m` channelUserIds).
  static std::string Body(std::size_t n, std::size_t m = 0) {
    auto list = [](std::size_t count, const std::string& item) {
      std::string out = "[";
      for (std::size_t i = 0; i < count; ++i) out += (i ? ",\"" : "\"") + item + "\"";
      return out + "]";
    };
    return R"({"destinations":)" + list(n, "+6591234567") + R"(,"channelUserIds":)" +
           list(m, "US.1") + "}";
  }
  simdjson::dom::parser parser_;
};

TEST_F(BatchBodyTest, KeepsEachListInRequestOrder) {
  auto body = Parse(R"({"channelUserIds":["US.2","US.1"],"destinations":["+2","","+1","+2"]})");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->destinations, (Views{"+2", "", "+1", "+2"}));
  EXPECT_EQ(body->channel_user_ids, (Views{"US.2", "US.1"}));
}

TEST_F(BatchBodyTest, EitherListAloneIsEnough) {
  EXPECT_EQ(Parse(R"({"destinations":["+1"]})")->size(), 1u);
  EXPECT_EQ(Parse(R"({"channelUserIds":["US.1"]})")->size(), 1u);
}

TEST_F(BatchBodyTest, UnescapesItemsAsJsonDoes) {
  auto body = Parse(R"({"destinations":["\u002b65\"x"]})");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->destinations, (Views{"+65\"x"}));
}

TEST_F(BatchBodyTest, AThousandItemsTogetherAreAllowed) {
  EXPECT_EQ(Parse(Body(kMaxBatchItems))->size(), kMaxBatchItems);
  EXPECT_EQ(Parse(Body(600, 400))->size(), kMaxBatchItems);
}

TEST_F(BatchBodyTest, MoreThanAThousandTogetherAreTooMany) {
  EXPECT_EQ(Parse(Body(kMaxBatchItems + 1)).error(), ApiError::kBatchTooLarge);
  EXPECT_EQ(Parse(Body(600, 401)).error(), ApiError::kBatchTooLarge);
  EXPECT_EQ(Parse(Body(0, 100000)).error(), ApiError::kBatchTooLarge);
}

TEST_F(BatchBodyTest, NoItemIsEmpty) {
  EXPECT_EQ(Parse("{}").error(), ApiError::kBatchEmpty);
  EXPECT_EQ(Parse(Body(0)).error(), ApiError::kBatchEmpty);
  EXPECT_EQ(Parse(R"({"destination":"+6591234567"})").error(), ApiError::kBatchEmpty);
}

TEST_F(BatchBodyTest, UnknownMembersAreIgnored) {
  EXPECT_EQ(Parse(R"({"destinations":["+1"],"extra":{"a":[1]}})")->size(), 1u);
}

TEST_F(BatchBodyTest, AnythingButArraysOfStringsIsMalformed) {
  for (const char* body :
       {"", "not json", "[]", R"(["+1"])", R"("+1")", R"({"destinations":"+1"})",
        R"({"destinations":null})", R"({"destinations":{"0":"+1"}})", R"({"destinations":[1]})",
        R"({"destinations":["+1",null]})", R"({"destinations":[["+1"]]})",
        R"({"destinations":["+1"],"channelUserIds":[true]})", R"({"destinations":["+1"])"}) {
    EXPECT_EQ(Parse(body).error(), ApiError::kMalformedRequest) << body;
  }
}

}  // namespace
}  // namespace callgate

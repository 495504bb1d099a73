#include "core/time.h"

#include <gtest/gtest.h>

namespace callgate {
namespace {

TEST(TimeTest, FormatsCentisecondsLikeTheEightByEightExamples) {
  const Instant t = *ParseTimestamp("2026-02-06T08:12:30.457Z");
  EXPECT_EQ(FormatCentis(t), "2026-02-06T08:12:30.45Z");
  EXPECT_EQ(FormatMillis(t), "2026-02-06T08:12:30.457Z");
}

TEST(TimeTest, ParsesWithoutFraction) {
  EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:01Z"), FromUnixSeconds(1));
}

TEST(TimeTest, RejectsMalformedTimestamps) {
  EXPECT_FALSE(ParseTimestamp("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseTimestamp("2026-01-01 00:00:00Z"));
  EXPECT_FALSE(ParseTimestamp("2026-01-01T00:00:00"));
  EXPECT_FALSE(ParseTimestamp("2026-01-01T00:00:00.x1Z"));
}

}  // namespace
}  // namespace callgate

#include "log/format.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace callgate {
namespace {

const Instant kTime = *ParseTimestamp("2026-02-01T08:12:30.123Z");

std::string Line(LogFormat format, std::string_view msg, const std::vector<LogField>& fields = {},
                 LogLevel level = LogLevel::kInfo) {
  std::string out;
  AppendLogLine(format, {kTime, level, msg, fields}, out);
  return out;
}

TEST(LogFormatTest, NamesParse) {
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("JSON"), std::nullopt);
  EXPECT_EQ(ParseLogFormat(""), std::nullopt);
}

TEST(LogFormatTest, JsonLineHasTimeLevelMessageAndFieldsInOrder) {
  EXPECT_EQ(Line(LogFormat::kJson, "access",
                 {{"requestId", "r-1"}, {"status", 200}, LogField::Decimal("durationMs", 48, 3)}),
            R"({"time":"2026-02-01T08:12:30.123Z","level":"info","msg":"access","requestId":"r-1",)"
            R"("status":200,"durationMs":0.048})"
            "\n");
  EXPECT_EQ(Line(LogFormat::kJson, "m", {}, LogLevel::kError),
            "{\"time\":\"2026-02-01T08:12:30.123Z\",\"level\":\"error\",\"msg\":\"m\"}\n");
}

TEST(LogFormatTest, TextLineIsTimeLevelMessageThenKeyValues) {
  EXPECT_EQ(Line(LogFormat::kText, "serving ./data with 2 thread(s)",
                 {{"route", "/api/{id}/x"}, {"status", 404}}, LogLevel::kWarn),
            "2026-02-01T08:12:30.123Z warn serving ./data with 2 thread(s) route=/api/{id}/x "
            "status=404\n");
}

TEST(LogFormatTest, DecimalsAreExact) {
  const auto text = [](std::int64_t units, int decimals) {
    std::string out;
    LogField::Decimal("d", units, decimals).AppendText(out);
    return out;
  };
  EXPECT_EQ(text(0, 3), "0.000");
  EXPECT_EQ(text(48, 3), "0.048");
  EXPECT_EQ(text(1234567, 3), "1234.567");
  EXPECT_EQ(text(-5, 2), "-0.05");
  EXPECT_EQ(text(7, 0), "7");
  EXPECT_EQ(text(std::numeric_limits<std::int64_t>::min(), 0), "-9223372036854775808");
}

// Whatever a message or a value holds, a line stays one line of valid JSON, and a value cannot
// pose as another field.
TEST(LogFormatTest, JsonEscapesControlCharactersQuotesAndBadUtf8) {
  const std::string nasty = std::string("a\"b\\c\nd\re\x1b[31m\x00", 15) + "é\xff";
  const std::string line = Line(LogFormat::kJson, nasty, {{"v", nasty}});
  const std::string escaped = R"("a\"b\\c\u000ad\u000de\u001b[31m\u0000é\ufffd")";
  EXPECT_EQ(line, R"({"time":"2026-02-01T08:12:30.123Z","level":"info","msg":)" + escaped +
                      R"(,"v":)" + escaped + "}\n");
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogFormatTest, TextQuotesWhatIsNotPlainAndNeverBreaksTheLine) {
  EXPECT_EQ(Line(LogFormat::kText, "two\nlines", {{"v", "x\ny"}}),
            "2026-02-01T08:12:30.123Z info \"two\\u000alines\" v=\"x\\u000ay\"\n");
  // A value with a space, '=' or '"' is quoted, so it cannot pose as another field.
  EXPECT_EQ(Line(LogFormat::kText, "m", {{"a", "1 b=2"}, {"c", "\"q\""}, {"e", ""}}),
            "2026-02-01T08:12:30.123Z info m a=\"1 b=2\" c=\"\\\"q\\\"\" e=\"\"\n");
  // Not ASCII: quoted (UTF-8 kept, other bytes replaced).
  EXPECT_EQ(Line(LogFormat::kText, "café\xff", {{"p", "/données"}}),
            "2026-02-01T08:12:30.123Z info \"café\\ufffd\" p=\"/données\"\n");
  EXPECT_EQ(Line(LogFormat::kText, ""), "2026-02-01T08:12:30.123Z info \"\"\n");
}

// Text is checked eight bytes at a time: whatever the position of what makes a value need quotes,
// it is found; and a value with none is written bare.
TEST(LogFormatTest, TextFindsWhatNeedsQuotesAtEveryPosition) {
  const auto text = [](const std::string& value) {
    std::string out;
    LogField("v", value).AppendText(out);
    return out;
  };
  for (std::size_t length : {7u, 8u, 9u, 16u, 23u}) {
    const std::string plain(length, 'a');
    EXPECT_EQ(text(plain), plain);
    for (std::size_t at = 0; at < length; ++at) {
      for (const char c : {' ', '"', '=', '\\', '\n', '\x7f', '\x80', '\0'}) {
        std::string value = plain;
        value[at] = c;
        EXPECT_EQ(text(value).front(), '"') << length << " " << at << " " << int(c);
      }
    }
  }
}

}  // namespace
}  // namespace callgate

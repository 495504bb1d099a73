#include "core/json_string.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace callgate {
namespace {

std::string Json(std::string_view text) {
  std::string out;
  AppendJsonString(out, text);
  return out;
}

TEST(JsonStringTest, PlainTextIsCopiedInQuotes) {
  EXPECT_EQ(Json(""), R"("")");
  EXPECT_EQ(Json("wamid.HBgL+/= {x}"), R"("wamid.HBgL+/= {x}")");
}

TEST(JsonStringTest, QuotesBackslashesAndEveryControlCharacterAreEscaped) {
  EXPECT_EQ(Json(R"(a"b\c)"), R"("a\"b\\c")");
  EXPECT_EQ(Json(std::string("\x00\x01\n\r\t\x1b\x1f\x20\x7f", 9)),
            "\"\\u0000\\u0001\\u000a\\u000d\\u0009\\u001b\\u001f \x7f\"");
  for (int c = 0; c < 0x20; ++c) {
    const std::string out = Json(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(out.size(), 8u) << c;  // "\u00XX"
    EXPECT_EQ(out.find_first_of(std::string("\n\r\0", 3)), std::string::npos) << c;
  }
}

TEST(JsonStringTest, WellFormedUtf8IsCopied) {
  // 2, 3 and 4 bytes; the edges of each length; U+2028 (valid JSON, escaped by nobody).
  for (const std::string text : {"é", "€", "😀", "\u0080", "\u07ff", "\u0800", "\uffff",
                                 "\U00010000", "\U0010ffff", "\u2028", "naïve café ✓"}) {
    EXPECT_EQ(Json(text), "\"" + text + "\"") << text;
  }
}

TEST(JsonStringTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(Json("\x80"), R"("\ufffd")");                      // a lone continuation byte
  EXPECT_EQ(Json("a\xc3"), R"("a\ufffd")");                    // a truncated sequence
  EXPECT_EQ(Json("\xc3(x"), R"("\ufffd(x")");                  // a lead without its continuation
  EXPECT_EQ(Json("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong '/'
  EXPECT_EQ(Json("\xe0\x80\xaf"), R"("\ufffd\ufffd\ufffd")");  // overlong, 3 bytes
  EXPECT_EQ(Json("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
  EXPECT_EQ(Json("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  EXPECT_EQ(Json("\xff\xfe"), R"("\ufffd\ufffd")");
  EXPECT_EQ(Json("ok\xe2\x82"), R"("ok\ufffd\ufffd")");  // a truncated euro sign
  EXPECT_EQ(Json("é\x80é"), "\"é\\ufffdé\"");
}

// Plain text is skipped eight bytes at a time: whatever the position of what needs escaping,
// within a word or across two, it is found.
TEST(JsonStringTest, EscapesAreFoundAtEveryPositionOfLongerText) {
  const std::vector<std::pair<std::string, std::string>> specials = {
      {"\"", "\\\""},
      {"\\", "\\\\"},
      {"\n", "\\u000a"},
      {std::string(1, '\0'), "\\u0000"},
      {"\x1f", "\\u001f"},
      {"é", "é"},
      {"\xe2\x82\xac", "\xe2\x82\xac"},
      {"\xff", "\\ufffd"},
      {"\xc3", "\\ufffd"},
      {"\x7f", "\x7f"},
      {" ", " "}};
  for (std::size_t length : {8u, 9u, 16u, 23u}) {
    for (std::size_t at = 0; at <= length; ++at) {
      for (const auto& [raw, escaped] : specials) {
        const std::string before(at, 'a');
        const std::string after(length - at, 'b');
        EXPECT_EQ(Json(before + raw + after), "\"" + before + escaped + after + "\"")
            << length << " " << at << " " << escaped;
      }
    }
  }
}

TEST(JsonStringTest, AnyBytesGiveOneLineOfPrintableAsciiOrUtf8) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string out = Json(all + all);
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_EQ(out.front(), '"');
  EXPECT_EQ(out.back(), '"');
  // Every quote inside is escaped.
  for (std::size_t i = 1; i + 1 < out.size(); ++i) {
    if (out[i] == '"') {
      EXPECT_EQ(out[i - 1], '\\') << i;
    }
  }
}

}  // namespace
}  // namespace callgate

#include "api/json.h"

#include <gtest/gtest.h>

#include <string>

namespace callgate {
namespace {

std::string JsonString(std::string_view value) {
  std::string out;
  JsonWriter(out).String(value);
  return out;
}

TEST(JsonWriterTest, PlainStringsAreCopied) {
  EXPECT_EQ(JsonString(""), R"("")");
  EXPECT_EQ(JsonString("wamid.HBgL+/= é"), "\"wamid.HBgL+/= é\"");
}

TEST(JsonWriterTest, QuotesBackslashesAndControlCharactersAreEscaped) {
  EXPECT_EQ(JsonString(R"(a"b\c)"), R"("a\"b\\c")");
  EXPECT_EQ(JsonString(std::string("\x00\x01\n\x1f\x20\x7f", 6)),
            "\"\\u0000\\u0001\\u000a\\u001f \x7f\"");
  EXPECT_EQ(JsonString("line\ttab\r\"end\""), R"("line\u0009tab\u000d\"end\"")");
}

TEST(JsonWriterTest, ValuesAreSeparated) {
  std::string out;
  JsonWriter(out).BeginObject().Key("a").String("\x02").Key("b").Int(-1).EndObject();
  EXPECT_EQ(out, R"({"a":"\u0002","b":-1})");
}

}  // namespace
}  // namespace callgate

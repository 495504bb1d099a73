#include "core/encoding.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace callgate {
namespace {

std::string AllBytes() {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  return bytes;
}

TEST(HexTest, EncodesLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
  EXPECT_EQ(HexEncode(AllBytes()).size(), 512u);
}

TEST(HexTest, DecodesEitherCase) {
  EXPECT_EQ(HexDecode(""), "");
  EXPECT_EQ(HexDecode("00017f80abff"), std::string("\x00\x01\x7f\x80\xab\xff", 6));
  EXPECT_EQ(HexDecode("ABFF"), "\xab\xff");
  EXPECT_EQ(HexDecode("aBfF"), "\xab\xff");
  EXPECT_EQ(HexDecode(HexEncode(AllBytes())), AllBytes());
}

TEST(HexTest, RefusesOddLengthsAndNonDigits) {
  for (const std::string_view bad : std::vector<std::string_view>{
           "0", "abc", "zz", "0g", "g0", " 0", "0 ", "0x", "-1", "+1", "..",
           std::string_view("\0\0", 2), "\xff\xff",
           "00000000000000000000000000000000000000000000000000000000000000:0"}) {
    EXPECT_EQ(HexDecode(bad), std::nullopt) << bad;
  }
}

// RFC 4648 §10.
struct Vector {
  std::string_view bytes, padded, unpadded, url;
};
constexpr Vector kVectors[] = {
    {"", "", "", ""},
    {"f", "Zg==", "Zg", "Zg"},
    {"fo", "Zm8=", "Zm8", "Zm8"},
    {"foo", "Zm9v", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy", "Zm9vYmFy"},
    {"\xfb\xff", "+/8=", "+/8", "-_8"},
    {"\xfb\xff\xbf", "+/+/", "+/+/", "-_-_"},
};

TEST(Base64Test, EncodesTheRfcVectors) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(Base64Encode(v.bytes, Base64Padding::kPadded), v.padded);
    EXPECT_EQ(Base64Encode(v.bytes, Base64Padding::kNone), v.unpadded);
    EXPECT_EQ(Base64UrlEncode(v.bytes), v.url);
  }
}

TEST(Base64Test, DecodesTheRfcVectors) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(Base64DecodeExact(v.padded, Base64Padding::kPadded), v.bytes) << v.padded;
    EXPECT_EQ(Base64DecodeExact(v.unpadded, Base64Padding::kNone), v.bytes) << v.unpadded;
  }
}

// Everything Abseil's decoder lets through but the encoder would never write.
TEST(Base64Test, DecodesOnlyTheTextTheEncoderWrites) {
  for (const std::string_view bad :
       std::vector<std::string_view>{"A", "AB", "AAB", "AAAAA", "A A", "AA\n", " AA",
                                     "AA==", "AAA=", "AA=", "=", "==", "-_-_", "AA.", "Zg==Zg"}) {
    EXPECT_EQ(Base64DecodeExact(bad, Base64Padding::kNone), std::nullopt) << bad;
  }
  for (const std::string_view bad :
       std::vector<std::string_view>{"A", "AA", "AAA", "AB==", "AAB=", "AA=", "AAAA==", "AA==\n",
                                     "AA ==", "=", "+/8", "-_8="}) {
    EXPECT_EQ(Base64DecodeExact(bad, Base64Padding::kPadded), std::nullopt) << bad;
  }
}

TEST(Base64Test, RandomBytesRoundTrip) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 70, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    for (const Base64Padding padding : {Base64Padding::kNone, Base64Padding::kPadded}) {
      const std::string text = Base64Encode(bytes, padding);
      ASSERT_EQ(Base64DecodeExact(text, padding), bytes) << text;
    }
  }
}

}  // namespace
}  // namespace callgate

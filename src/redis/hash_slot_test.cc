#include <gtest/gtest.h>

#include "redis/cluster_client.h"

namespace callgate::redis {
namespace {

TEST(HashSlotTest, MatchesTheClusterSpecVector) {
  // The spec's CRC16 test vector: CRC16-XMODEM("123456789") = 0x31C3.
  EXPECT_EQ(HashSlot("123456789"), 0x31C3 % 16384);
}

TEST(HashSlotTest, KnownSlotsOfRedis) {
  // As CLUSTER KEYSLOT answers on a real server.
  EXPECT_EQ(HashSlot("foo"), 12182);
  EXPECT_EQ(HashSlot("bar"), 5061);
  EXPECT_EQ(HashSlot(""), 0);
}

TEST(HashSlotTest, KeysWithTheSameTagShareASlot) {
  EXPECT_EQ(HashSlot("{user1000}.following"), HashSlot("{user1000}.followers"));
  EXPECT_EQ(HashSlot("{user1000}.following"), HashSlot("user1000"));
}

TEST(HashSlotTest, AnEmptyTagHashesTheWholeKey) {
  EXPECT_EQ(HashSlot("foo{}{bar}"), HashSlot(std::string_view("foo{}{bar}")));
  EXPECT_NE(HashSlot("foo{}{bar}"), HashSlot("bar"));
  EXPECT_EQ(HashSlot("foo{}{bar}"), 8363);
}

TEST(HashSlotTest, OnlyTheFirstTagCountsAndMayHoldABrace) {
  EXPECT_EQ(HashSlot("foo{{bar}}zap"), HashSlot("{bar"));
  EXPECT_EQ(HashSlot("foo{{bar}}zap"), 4015);
  EXPECT_EQ(HashSlot("foo{bar}{zap}"), HashSlot("bar"));
}

TEST(HashSlotTest, AnUnclosedBraceHashesTheWholeKey) {
  EXPECT_EQ(HashSlot("foo{bar"), 15278);
  EXPECT_NE(HashSlot("foo{bar"), HashSlot("bar"));
}

TEST(HashSlotTest, EverySlotIsBelow16384) {
  for (int i = 0; i < 100000; ++i) EXPECT_LT(HashSlot("key:" + std::to_string(i)), 16384);
}

}  // namespace
}  // namespace callgate::redis

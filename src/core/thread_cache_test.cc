#include "core/thread_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace callgate {
namespace {

struct TestTag;

TEST(ThreadCacheTest, KeepsTheValueForTheSameOwnerAndVersion) {
  const std::uint64_t owner = NewCacheOwnerId();
  ThreadCache<std::string, TestTag>(owner, 1) = "cached";
  EXPECT_EQ((ThreadCache<std::string, TestTag>(owner, 1)), "cached");
}

TEST(ThreadCacheTest, AnotherOwnerOrVersionStartsEmpty) {
  const std::uint64_t owner = NewCacheOwnerId();
  const std::uint64_t other = NewCacheOwnerId();
  EXPECT_NE(owner, other);
  ThreadCache<std::string, TestTag>(owner, 1) = "cached";
  EXPECT_EQ((ThreadCache<std::string, TestTag>(owner, 2)), "");
  ThreadCache<std::string, TestTag>(owner, 2) = "v2";
  EXPECT_EQ((ThreadCache<std::string, TestTag>(other, 2)), "");
  EXPECT_EQ((ThreadCache<std::string, TestTag>(owner, 2)), "");  // the slot moved on
}

TEST(ThreadCacheTest, EachThreadHasItsOwnSlot) {
  const std::uint64_t owner = NewCacheOwnerId();
  ThreadCache<std::string, TestTag>(owner) = "main";
  std::string seen = "unset";
  std::thread([&] { seen = ThreadCache<std::string, TestTag>(owner); }).join();
  EXPECT_EQ(seen, "");
  EXPECT_EQ((ThreadCache<std::string, TestTag>(owner)), "main");
}

}  // namespace
}  // namespace callgate

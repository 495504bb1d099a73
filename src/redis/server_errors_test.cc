#include "redis/server_errors.h"

#include <gtest/gtest.h>

namespace callgate::redis {
namespace {

TEST(ClassifyErrorTest, RedirectionsRefusalsAndTheRest) {
  EXPECT_EQ(ClassifyError("MOVED 3999 127.0.0.1:6381"), ErrorClass::kMoved);
  EXPECT_EQ(ClassifyError("ASK 3999 127.0.0.1:6381"), ErrorClass::kAsk);
  EXPECT_EQ(ClassifyError("NOSCRIPT No matching script. Please use EVAL."), ErrorClass::kNoScript);
  EXPECT_EQ(ClassifyError("TRYAGAIN Multiple keys request during rehashing of slot"),
            ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError("CLUSTERDOWN The cluster is down"), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError("LOADING Redis is loading the dataset in memory"),
            ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError("NOREPLICAS Not enough good replicas to write."), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError("MASTERDOWN Link with MASTER is down"), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ErrorClass::kOther);
  EXPECT_EQ(ClassifyError("ERR Error running script (call to f_x): @user_script:1: boom"),
            ErrorClass::kOther);
  // A prefix of a word is not the word.
  EXPECT_EQ(ClassifyError("ASKED nothing"), ErrorClass::kOther);
  EXPECT_EQ(ClassifyError("MOVEDX 1 h:1"), ErrorClass::kOther);
}

TEST(ParseRedirectTest, ReadsSlotHostAndPort) {
  auto moved = ParseRedirect("MOVED 3999 127.0.0.1:6381", "10.0.0.9");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->target, (Endpoint{"127.0.0.1", 6381}));
  auto ask = ParseRedirect("ASK 0 redis-b:7001", "x");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->slot, 0);
  EXPECT_EQ(ask->target, (Endpoint{"redis-b", 7001}));
}

TEST(ParseRedirectTest, AnEmptyHostIsTheSendersAndIpv6KeepsItsColons) {
  auto moved = ParseRedirect("MOVED 16383 :7002", "10.0.0.9");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->target, (Endpoint{"10.0.0.9", 7002}));
  auto v6 = ParseRedirect("MOVED 5 ::1:7002", "x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->target, (Endpoint{"::1", 7002}));
}

TEST(ParseRedirectTest, RefusesMalformedRedirections) {
  for (const char* bad :
       {"MOVED", "MOVED 3999", "MOVED x 127.0.0.1:1", "MOVED 16384 h:1", "MOVED 1 h", "MOVED 1 h:0",
        "MOVED 1 h:65536", "MOVED 1 h:x", "MOVED -1 h:1"}) {
    EXPECT_FALSE(ParseRedirect(bad, "h")) << bad;
  }
}

TEST(BackoffDelayTest, StaysWithinBoundsAndGrows) {
  for (int attempt = 0; attempt < 40; ++attempt) {
    for (double jitter : {0.0, 0.3, 1.0, -5.0, 7.0}) {
      const auto delay = BackoffDelay(attempt, jitter);
      EXPECT_GE(delay, kMinBackoff) << attempt << " " << jitter;
      EXPECT_LE(delay, kMaxBackoff) << attempt << " " << jitter;
    }
  }
  // The first retry is quick, a long run of refusals waits the longest step.
  EXPECT_LE(BackoffDelay(0, 1.0), std::chrono::microseconds(1000));
  EXPECT_EQ(BackoffDelay(30, 1.0), kMaxBackoff);
  EXPECT_GE(BackoffDelay(30, 0.0), kMaxBackoff / 2);
  for (int attempt = 0; attempt < 20; ++attempt) {
    EXPECT_LE(BackoffDelay(attempt, 1.0), BackoffDelay(attempt + 1, 1.0));
  }
  // Jitter spreads retries of the same step.
  EXPECT_LT(BackoffDelay(5, 0.0), BackoffDelay(5, 1.0));
}

}  // namespace
}  // namespace callgate::redis

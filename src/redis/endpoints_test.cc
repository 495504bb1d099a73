#include <gtest/gtest.h>

#include "redis/cluster_client.h"

namespace callgate::redis {
namespace {

TEST(ParseEndpointsTest, ReadsAListOfHostsAndPorts) {
  auto parsed = ParseEndpoints("127.0.0.1:7000,redis-a.internal:7001, [::1]:7002");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0], (Endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ((*parsed)[1], (Endpoint{"redis-a.internal", 7001}));
  EXPECT_EQ((*parsed)[2], (Endpoint{"::1", 7002}));
}

TEST(ParseEndpointsTest, ErrorsSayWhatIsWrong) {
  auto error_of = [](std::string_view text) {
    auto parsed = ParseEndpoints(text);
    EXPECT_FALSE(parsed.ok()) << text;
    return parsed.ok() ? std::string() : parsed.error();
  };
  EXPECT_EQ(error_of(""), "no HOST:PORT given");
  EXPECT_EQ(error_of("127.0.0.1"), "\"127.0.0.1\": expected HOST:PORT (no port)");
  EXPECT_EQ(error_of("127.0.0.1:"), "\"127.0.0.1:\": the port is not a number");
  EXPECT_EQ(error_of("127.0.0.1:70x"), "\"127.0.0.1:70x\": the port is not a number");
  EXPECT_EQ(error_of("127.0.0.1:0"), "\"127.0.0.1:0\": the port must be 1-65535");
  EXPECT_EQ(error_of("127.0.0.1:65536"), "\"127.0.0.1:65536\": the port must be 1-65535");
  EXPECT_EQ(error_of(":7000"), "\":7000\": the host is empty");
  EXPECT_EQ(error_of("a:1,,b:2"), "an empty entry in the list (two commas?)");
  EXPECT_EQ(error_of("a:1,"), "an empty entry in the list (two commas?)");
  EXPECT_EQ(error_of("::1:7000"), "\"::1:7000\": an IPv6 address needs brackets ([ADDR]:PORT)");
  EXPECT_EQ(error_of("[::1]7000"), "\"[::1]7000\": expected [IPV6]:PORT");
}

TEST(ScriptTest, NamesTheSourceByItsSha1AsRedisDoes) {
  // SCRIPT LOAD "return 1" answers this digest.
  EXPECT_EQ(Script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(Script("").sha1(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Script("return 1").source(), "return 1");
}

}  // namespace
}  // namespace callgate::redis

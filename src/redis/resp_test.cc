#include "redis/resp.h"

#include <gtest/gtest.h>

namespace callgate::redis {
namespace {

TEST(AppendCommandTest, EncodesBinarySafeBulkStrings) {
  std::string out;
  AppendCommand({"SET", "k", std::string("a\0b", 3)}, out);
  EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n", 29));
  AppendCommand({"PING"}, out);
  EXPECT_TRUE(out.ends_with("*1\r\n$4\r\nPING\r\n"));
}

TEST(AppendCommandTest, FramesEmptyAndLargeArgumentsAndManyOfThem) {
  std::string out;
  AppendCommand({"SET", "", std::string(100000, 'v')}, out);
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$100000\r\n" + std::string(100000, 'v') + "\r\n");
  // Read back by the reply reader (a command is an array of bulk strings): every argument whole.
  std::vector<std::string> args(1234);
  for (std::size_t i = 0; i < args.size(); ++i) args[i] = std::string(i % 40, static_cast<char>(i));
  out.clear();
  AppendCommand(args, out);
  ReplyReader reader(1 << 20);
  ASSERT_TRUE(reader.Feed(out.data(), out.size()));
  const auto parsed = reader.Next();
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->elements.size(), args.size());
  for (std::size_t i = 0; i < args.size(); ++i) EXPECT_EQ(parsed->elements[i].str, args[i]) << i;
}

TEST(ReplyReaderTest, DecodesEveryTypeAcrossSplitReads) {
  ReplyReader reader(1 << 20);
  const std::string wire =
      "+OK\r\n-ERR bad\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$1\r\nx\r\n";
  std::vector<Reply> replies;
  for (char c : wire) {  // one byte at a time: partial replies wait for the rest
    ASSERT_TRUE(reader.Feed(&c, 1));
    while (auto reply = reader.Next()) replies.push_back(std::move(*reply));
  }
  ASSERT_EQ(replies.size(), 6u);
  EXPECT_EQ(replies[0].type, Reply::Type::kStatus);
  EXPECT_EQ(replies[0].str, "OK");
  EXPECT_TRUE(replies[1].is_error());
  EXPECT_EQ(replies[1].str, "ERR bad");
  EXPECT_EQ(replies[2].integer, 42);
  EXPECT_EQ(replies[3].str, "hello");
  EXPECT_TRUE(replies[4].is_nil());
  ASSERT_EQ(replies[5].elements.size(), 2u);
  EXPECT_EQ(replies[5].elements[1].elements[0].str, "x");
}

TEST(ReplyReaderTest, AProtocolErrorIsReported) {
  ReplyReader reader(1 << 20);
  ASSERT_TRUE(reader.Feed("?what\r\n", 7));
  EXPECT_FALSE(reader.Next());
  EXPECT_FALSE(reader.error().empty());
}

TEST(ReplyReaderTest, AReplyBeyondTheLimitIsRefused) {
  ReplyReader reader(16);
  EXPECT_TRUE(reader.Feed("$100\r\n", 6));
  const std::string chunk(40, 'x');
  EXPECT_FALSE(reader.Feed(chunk.data(), chunk.size()));
  EXPECT_EQ(reader.error(), "a reply exceeds the size limit");
}

}  // namespace
}  // namespace callgate::redis

// RESP2 on the wire, through hiredis 0.14 as a codec only: commands encoded with
// redisFormatCommandArgv, replies decoded by a redisReader into redis::Reply. A ReplyReader
// belongs to one connection; thread-compatible.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "redis/reply.h"

struct redisReader;

namespace callgate::redis {

// Appends `args` as one RESP command to `out`.
void AppendCommand(const std::vector<std::string>& args, std::string& out);

class ReplyReader {
 public:
  // A reply may not hold more than `max_reply_bytes` (nor nest deeper than hiredis's 7 levels):
  // a larger one is a protocol error, so one reply cannot take unbounded memory.
  explicit ReplyReader(std::size_t max_reply_bytes);
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // False on a protocol error (error() says which); the reader is then unusable.
  bool Feed(const char* data, std::size_t size);
  // The next complete reply, if one is buffered; nullopt with error() set on a protocol error.
  std::optional<Reply> Next();
  const std::string& error() const { return error_; }

 private:
  redisReader* reader_;
  std::size_t max_reply_bytes_;
  std::string error_;
};

}  // namespace callgate::redis

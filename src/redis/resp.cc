// RESP through hiredis's reader and formatter.
#include "redis/resp.h"

#include <hiredis/hiredis.h>

#include <utility>

namespace callgate::redis {
namespace {

Reply Convert(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(Convert(*r.element[i]));
      break;
    default:  // REDIS_REPLY_NIL
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

}  // namespace

void AppendCommand(const std::vector<std::string>& args, std::string& out) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* command = nullptr;
  const int length =
      redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (length > 0 && command != nullptr) out.append(command, static_cast<std::size_t>(length));
  redisFreeCommand(command);
}

ReplyReader::ReplyReader(std::size_t max_reply_bytes)
    : reader_(redisReaderCreate()), max_reply_bytes_(max_reply_bytes) {}

ReplyReader::~ReplyReader() { redisReaderFree(reader_); }

bool ReplyReader::Feed(const char* data, std::size_t size) {
  if (reader_ == nullptr) {
    error_ = "out of memory";
    return false;
  }
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) {
    error_ = reader_->errstr;
    return false;
  }
  // Complete replies are taken out after every read, so what stays buffered is one partial reply.
  if (reader_->len - reader_->pos > max_reply_bytes_) {
    error_ = "a reply exceeds the size limit";
    return false;
  }
  return true;
}

std::optional<Reply> ReplyReader::Next() {
  if (reader_ == nullptr) return std::nullopt;
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    error_ = reader_->errstr[0] != '\0' ? reader_->errstr : "protocol error";
    return std::nullopt;
  }
  if (raw == nullptr) return std::nullopt;
  Reply reply = Convert(*static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return reply;
}

}  // namespace callgate::redis

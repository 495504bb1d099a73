// Small readers of the scripts' replies and a blocking wait on an asynchronous command, shared by
// RedisClusterStore's files. Pure helpers; thread-safe.
#pragma once

#include <future>
#include <string>
#include <utility>

#include "redis/cluster_client.h"

namespace callgate::redis_reply {

// Element `i` of an array reply as text ("" if it is missing or not a string).
inline const std::string& Text(const redis::Reply& reply, std::size_t i) {
  static const std::string kEmpty;
  if (reply.type != redis::Reply::Type::kArray || i >= reply.elements.size()) return kEmpty;
  const redis::Reply& e = reply.elements[i];
  return e.type == redis::Reply::Type::kString || e.type == redis::Reply::Type::kStatus ? e.str
                                                                                        : kEmpty;
}

// Element `i` of an array reply as an integer (0 if missing).
inline std::int64_t Integer(const redis::Reply& reply, std::size_t i) {
  if (reply.type != redis::Reply::Type::kArray || i >= reply.elements.size()) return 0;
  return reply.elements[i].integer;
}

// A command started with a callback, as a future: for the store's synchronous paths (never the
// client's I/O thread).
class Pending {
 public:
  redis::CommandDone Callback() {
    return [promise = promise_](redis::CommandResult result) {
      promise->set_value(std::move(result));
    };
  }
  redis::CommandResult Get() { return future_.get(); }

 private:
  std::shared_ptr<std::promise<redis::CommandResult>> promise_ =
      std::make_shared<std::promise<redis::CommandResult>>();
  std::future<redis::CommandResult> future_ = promise_->get_future();
};

}  // namespace callgate::redis_reply

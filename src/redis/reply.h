// Reply: one RESP2 reply, decoded (by hiredis's reader) into a plain value the layers above read
// without hiredis. Thread-compatible value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace callgate::redis {

struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  std::int64_t integer = 0;     // kInteger
  std::string str;              // kString, kStatus, kError
  std::vector<Reply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
};

}  // namespace callgate::redis

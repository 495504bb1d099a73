// JsonWriter: appends compact JSON to a string. Responses here have fixed shapes, so a writer
// that emits them directly (no DOM) keeps the hot path allocation-light. Strings are escaped per
// RFC 8259 (core/json_string.h). Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace callgate {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  // Keys are the program's own constants, written as they are (never user input).
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(std::int64_t value);
  JsonWriter& Bool(bool value);
  // Already-serialised JSON, as a value (the e2e tests build upstream payloads with it).
  JsonWriter& Raw(std::string_view json);

 private:
  JsonWriter& Open(char c);
  JsonWriter& Close(char c);
  void Separate();

  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace callgate

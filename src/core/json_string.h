// JSON string escaping (RFC 8259), the project's one implementation: the API's response bodies
// (api/json.h) and the JSON log lines (log/) both write strings through it. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace callgate {

// Appends `text` to `out` as a JSON string: in quotes, with quotes, backslashes and control
// characters escaped, and every byte that is not part of well-formed UTF-8 replaced by \ufffd, so
// the result is valid JSON, on one line, whatever bytes `text` holds. Well-formed UTF-8 is copied
// as it is.
void AppendJsonString(std::string& out, std::string_view text);

}  // namespace callgate

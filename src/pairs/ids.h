// Fresh random ids (UUID v4 text) for errorId, request and authorisation ids. Thread-safe.
#pragma once

#include <string>

namespace callgate {

std::string NewUuid();

}  // namespace callgate

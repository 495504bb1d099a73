// The API's own OpenAPI description (docs/openapi.json), built into the binary so that
// GET /openapi.json needs no file at run time. The bytes are generated at build time from the
// document (scripts/embed_file.cmake); immutable, so thread-safe.
#pragma once

#include <string_view>

namespace callgate {

// docs/openapi.json, byte for byte.
std::string_view OpenApiDocument();

}  // namespace callgate

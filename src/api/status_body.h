// The status body: what the status GET answers for a StatusView (the 8x8 200 body, plus
// limitExpirationTime on reached limits), and the same members inside other objects (a batch
// item, a reservation's answer, a notification). One renderer for all of them, so that they are
// byte for byte the GET's. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/ledger.h"

namespace callgate {

// Appends the body's members and its closing brace — the body without its leading `{` — to
// `out`, so that a caller can open the object with members of its own (`{"destination":"…",`).
void AppendStatusMembers(std::string& out, const StatusView& view);

// The whole body; `id_name`/`id_value`, if given, lead the object (e.g. "requestId").
std::string RenderStatus(const StatusView& view, std::string_view id_name = {},
                         std::string_view id_value = {});

// The status GET's body for `view`: RenderStatus(view), kept per thread for the next view that
// equals it. Valid until the thread's next call.
const std::string& StatusBody(const StatusView& view);

}  // namespace callgate

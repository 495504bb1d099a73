#include "ingest/route.h"

namespace callgate {

Event CallbackGrantFor(const Event& call_event) {
  if (const auto* terminated = std::get_if<CallTerminated>(&call_event)) {
    return CallbackGranted{terminated->call_id, terminated->started_at.value_or(terminated->at)};
  }
  return CallbackGranted{EventId(call_event), EventTime(call_event)};
}

}  // namespace callgate

#include "core/events.h"

namespace callgate {

Instant EventTime(const Event& event) {
  return std::visit([](const auto& e) { return e.at; }, event);
}

}  // namespace callgate

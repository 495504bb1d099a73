#include "core/limits.h"

namespace callgate {

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kSendCallPermissionRequest:
      return "send_call_permission_request";
    case Action::kStartCall:
      return "start_call";
  }
  return "unknown";
}

std::string_view ProfileName(LimitsProfile profile) {
  switch (profile) {
    case LimitsProfile::kProduction:
      return "production";
    case LimitsProfile::kSandbox:
      return "sandbox";
  }
  return "unknown";
}

}  // namespace callgate

#include "notify/payload.h"

#include "api/api.h"
#include "api/json.h"

namespace callgate {

std::string RenderNotification(const OutboxItem& item, const std::string& subaccount_id,
                               const StatusView& view) {
  const Notification& n = item.notification;
  std::string body;
  JsonWriter json(body);
  json.BeginObject()
      .Key("eventId")
      .String(item.event_id)
      .Key("type")
      .String(NotificationTypeName(n.type))
      .Key("occurredAt")
      .String(FormatMillis(n.occurred_at))
      .Key("subAccountId")
      .String(subaccount_id)
      .Key("channelId")
      .String(item.pair.channel_id)
      .Key(UserField(item.pair.user))
      .String(item.pair.user.text());
  switch (n.type) {
    case NotificationType::kPermissionGranted:
      json.Key("permission").String(StatusName(n.granted)).Key("source").String(n.reason);
      break;
    case NotificationType::kPermissionRevoked:
      json.Key("reason").String(n.reason);
      break;
    case NotificationType::kLimitReached:
    case NotificationType::kLimitFreed:
      if (n.rule >= 0 && n.rule < static_cast<int>(kLimitRules.size())) {
        const LimitRule& rule = kLimitRules[n.rule];
        json.Key("action")
            .String(ActionName(rule.action))
            .Key("timePeriod")
            .String(rule.iso_period)
            .Key("maxAllowed")
            .Int(view.usage[n.rule].max_allowed);
      }
      break;
    case NotificationType::kPermissionExpired:
    case NotificationType::kPermissionExpiring:
    case NotificationType::kReconsiderNotice:
      break;
  }
  json.Key("status").Raw(StatusBody(view)).EndObject();
  return body;
}

}  // namespace callgate

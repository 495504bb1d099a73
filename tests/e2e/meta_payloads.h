// Builders for Meta Cloud API webhook payloads in their exact upstream shapes (docs/rules.md §5):
// the whatsapp_business_account envelope, messages[] call_permission_reply, calls[]
// connect/terminate, call statuses[], account_settings_update. Tests describe items as plain
// structs and get the JSON bytes Meta would POST. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "api/json.h"
#include "core/time.h"

namespace callgate::testing::meta {

inline constexpr char kWabaId[] = "102290129340398";

// Unix seconds, as Meta writes timestamps.
inline std::int64_t Secs(Instant t) { return ToUnixMillis(t) / 1000; }

// The business phone number a change is about (value.metadata).
struct Business {
  std::string phone_number_id;
  std::string display_phone_number;  // digits, no '+'
};

// messages[]: type interactive, interactive.type call_permission_reply.
struct PermissionReply {
  std::string wamid;  // messages[].id
  std::string from;   // user digits
  Instant at;         // messages[].timestamp
  std::string response = "accept";
  bool is_permanent = false;                    // sent on accept only
  std::optional<Instant> expiration_timestamp;  // temporary accept
  bool expiration_as_number = false;            // upstream sends a string or a number
  std::string response_source = "user_action";  // or "automatic"
  std::optional<std::string> context_id;        // request wamid, or a wacid for callbacks
};

// messages[] of another type (type text): irrelevant to call permissions.
struct TextMessage {
  std::string wamid;
  std::string from;
  Instant at;
  std::string body = "hello";
};

// calls[]: connect or terminate.
struct Call {
  std::string id;  // wacid
  std::string event;
  std::string direction;  // BUSINESS_INITIATED | USER_INITIATED
  std::string from;
  std::string to;
  Instant at;
  // terminate only:
  std::optional<std::string> status;  // "Completed" | "Failed"
  std::optional<Instant> start_time;  // present only if picked up
  std::optional<Instant> end_time;
  std::optional<std::int64_t> duration;  // present only if picked up
  std::optional<std::string> biz_opaque_callback_data;
};

// statuses[] with type call: RINGING | ACCEPTED | REJECTED.
struct CallStatus {
  std::string id;  // wacid
  std::string status;
  std::string recipient_id;
  Instant at;
  std::optional<std::string> biz_opaque_callback_data;
};

// account_settings_update for a phone number's calling settings.
struct CallbackSetting {
  std::string phone_number_id;
  bool enabled = false;
  Instant at;
};

using Item = std::variant<PermissionReply, TextMessage, Call, CallStatus, CallbackSetting>;

namespace detail {

inline void Metadata(JsonWriter& json, const Business& business) {
  json.Key("messaging_product")
      .String("whatsapp")
      .Key("metadata")
      .BeginObject()
      .Key("display_phone_number")
      .String(business.display_phone_number)
      .Key("phone_number_id")
      .String(business.phone_number_id)
      .EndObject();
}

inline void Contacts(JsonWriter& json, const std::vector<std::string>& wa_ids) {
  json.Key("contacts").BeginArray();
  for (const std::string& wa_id : wa_ids) {
    json.BeginObject()
        .Key("profile")
        .BeginObject()
        .Key("name")
        .String("Test User")
        .EndObject()
        .Key("wa_id")
        .String(wa_id)
        .EndObject();
  }
  json.EndArray();
}

inline std::string Timestamp(Instant t) { return std::to_string(Secs(t)); }

}  // namespace detail

inline std::string ToJson(const Business& business, const PermissionReply& reply) {
  std::string out;
  JsonWriter json(out);
  json.BeginObject();
  if (reply.context_id) {
    json.Key("context")
        .BeginObject()
        .Key("from")
        .String(business.display_phone_number)
        .Key("id")
        .String(*reply.context_id)
        .EndObject();
  }
  json.Key("from")
      .String(reply.from)
      .Key("id")
      .String(reply.wamid)
      .Key("timestamp")
      .String(detail::Timestamp(reply.at))
      .Key("type")
      .String("interactive")
      .Key("interactive")
      .BeginObject()
      .Key("type")
      .String("call_permission_reply")
      .Key("call_permission_reply")
      .BeginObject()
      .Key("response")
      .String(reply.response);
  if (reply.response == "accept") json.Key("is_permanent").Bool(reply.is_permanent);
  if (reply.expiration_timestamp) {
    json.Key("expiration_timestamp");
    if (reply.expiration_as_number) {
      json.Int(Secs(*reply.expiration_timestamp));
    } else {
      json.String(detail::Timestamp(*reply.expiration_timestamp));
    }
  }
  json.Key("response_source").String(reply.response_source).EndObject().EndObject().EndObject();
  return out;
}

inline std::string ToJson(const Business&, const TextMessage& message) {
  std::string out;
  JsonWriter json(out);
  json.BeginObject()
      .Key("from")
      .String(message.from)
      .Key("id")
      .String(message.wamid)
      .Key("timestamp")
      .String(detail::Timestamp(message.at))
      .Key("type")
      .String("text")
      .Key("text")
      .BeginObject()
      .Key("body")
      .String(message.body)
      .EndObject()
      .EndObject();
  return out;
}

inline std::string ToJson(const Business&, const Call& call) {
  std::string out;
  JsonWriter json(out);
  json.BeginObject()
      .Key("id")
      .String(call.id)
      .Key("to")
      .String(call.to)
      .Key("from")
      .String(call.from)
      .Key("event")
      .String(call.event)
      .Key("timestamp")
      .String(detail::Timestamp(call.at))
      .Key("direction")
      .String(call.direction);
  if (call.biz_opaque_callback_data) {
    json.Key("biz_opaque_callback_data").String(*call.biz_opaque_callback_data);
  }
  if (call.event == "connect") {
    json.Key("session")
        .BeginObject()
        .Key("sdp_type")
        .String(call.direction == "USER_INITIATED" ? "offer" : "answer")
        .Key("sdp")
        .String("v=0\r\no=- 0 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
        .EndObject();
  }
  if (call.status) json.Key("status").String(*call.status);
  if (call.start_time) json.Key("start_time").String(detail::Timestamp(*call.start_time));
  if (call.end_time) json.Key("end_time").String(detail::Timestamp(*call.end_time));
  if (call.duration) json.Key("duration").Int(*call.duration);
  json.EndObject();
  return out;
}

inline std::string ToJson(const Business&, const CallStatus& status) {
  std::string out;
  JsonWriter json(out);
  json.BeginObject()
      .Key("id")
      .String(status.id)
      .Key("timestamp")
      .String(detail::Timestamp(status.at))
      .Key("type")
      .String("call")
      .Key("status")
      .String(status.status)
      .Key("recipient_id")
      .String(status.recipient_id);
  if (status.biz_opaque_callback_data) {
    json.Key("biz_opaque_callback_data").String(*status.biz_opaque_callback_data);
  }
  json.EndObject();
  return out;
}

// One change: {"value":{...},"field":"..."}. All items must be of one kind: messages
// (PermissionReply / TextMessage), calls (Call), call statuses (CallStatus), or one
// CallbackSetting.
inline std::string Change(const Business& business, const std::vector<Item>& items) {
  std::string out;
  JsonWriter json(out);
  json.BeginObject().Key("value").BeginObject();
  if (items.size() == 1 && std::holds_alternative<CallbackSetting>(items[0])) {
    const auto& setting = std::get<CallbackSetting>(items[0]);
    const char* state = setting.enabled ? "ENABLED" : "DISABLED";
    json.Key("timestamp")
        .String(detail::Timestamp(setting.at))
        .Key("type")
        .String("phone_number_settings")
        .Key("phone_number_settings")
        .BeginObject()
        .Key("phone_number_id")
        .String(setting.phone_number_id)
        .Key("calling")
        .BeginObject()
        .Key("status")
        .String("ENABLED")
        .Key("call_icon_visibility")
        .String("DEFAULT")
        .Key("callback_permission_status")
        .String(state)
        .EndObject()
        .EndObject()
        .EndObject()
        .Key("field")
        .String("account_settings_update")
        .EndObject();
    return out;
  }
  detail::Metadata(json, business);
  std::vector<std::string> users;
  std::string array_name = "messages";
  std::string field = "messages";
  std::string elements;
  for (const Item& item : items) {
    if (!elements.empty()) elements += ",";
    elements += std::visit(
        [&](const auto& i) -> std::string {
          (void)i;
          using T = std::decay_t<decltype(i)>;
          if constexpr (std::is_same_v<T, PermissionReply> || std::is_same_v<T, TextMessage>) {
            users.push_back(i.from);
          } else if constexpr (std::is_same_v<T, Call>) {
            users.push_back(i.direction == "USER_INITIATED" ? i.from : i.to);
            array_name = "calls";
            field = "calls";
          } else if constexpr (std::is_same_v<T, CallStatus>) {
            array_name = "statuses";
            field = "calls";
          }
          if constexpr (std::is_same_v<T, CallbackSetting>) {
            return "{}";  // settings changes go alone (see above)
          } else {
            return ToJson(business, i);
          }
        },
        item);
  }
  if (!users.empty()) detail::Contacts(json, users);
  json.Key(array_name).Raw("[" + elements + "]").EndObject().Key("field").String(field).EndObject();
  return out;
}

// {"id": waba, "changes": [...]}
inline std::string Entry(const std::vector<std::string>& changes,
                         const std::string& waba_id = kWabaId) {
  std::string list;
  for (const std::string& change : changes) list += (list.empty() ? "" : ",") + change;
  std::string out;
  JsonWriter json(out);
  json.BeginObject().Key("id").String(waba_id).Key("changes").Raw("[" + list + "]").EndObject();
  return out;
}

// {"object":"whatsapp_business_account","entry":[...]}
inline std::string Envelope(const std::vector<std::string>& entries) {
  std::string list;
  for (const std::string& entry : entries) list += (list.empty() ? "" : ",") + entry;
  std::string out;
  JsonWriter json(out);
  json.BeginObject()
      .Key("object")
      .String("whatsapp_business_account")
      .Key("entry")
      .Raw("[" + list + "]")
      .EndObject();
  return out;
}

// One item in one change in one entry: how Meta delivers most events.
inline std::string Payload(const Business& business, const Item& item) {
  return Envelope({Entry({Change(business, {item})})});
}

// Several items in one delivery: one entry, consecutive items of the same kind sharing a change
// (as Meta batches them), in the given order.
inline std::string Batch(const Business& business, const std::vector<Item>& items) {
  auto kind = [](const Item& item) {
    switch (item.index()) {
      case 0:
      case 1:
        return 0;  // messages
      default:
        return static_cast<int>(item.index());
    }
  };
  std::vector<std::string> changes;
  std::vector<Item> run;
  for (const Item& item : items) {
    if (!run.empty() && (kind(run.back()) != kind(item) || kind(item) == 4)) {
      changes.push_back(Change(business, run));
      run.clear();
    }
    run.push_back(item);
  }
  if (!run.empty()) changes.push_back(Change(business, run));
  return Envelope({Entry(changes)});
}

}  // namespace callgate::testing::meta

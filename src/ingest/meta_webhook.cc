#include "ingest/meta_webhook.h"

#include <simdjson.h>

#include <charconv>
#include <optional>
#include <vector>

namespace callgate {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// These take an element or a lookup result (simdjson_result<element>): a missing parent reads as
// a missing field, never an exception.
template <class E>
std::string_view Str(E e, std::string_view key) {
  std::string_view value;
  if (e.at_key(key).get(value) != simdjson::SUCCESS) return {};
  return value;
}

template <class E>
bool Has(E e, std::string_view key) {
  return e.at_key(key).error() == simdjson::SUCCESS;
}

// The elements of an array field; none if it is missing or not an array. (A default dom::array
// must not be iterated, so absent arrays never reach a loop.)
template <class E>
std::vector<element> Items(E e, std::string_view key) {
  array items;
  if (e.at_key(key).get(items) != simdjson::SUCCESS) return {};
  return std::vector<element>(items.begin(), items.end());
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Unix seconds, as a string or a number.
template <class E>
std::optional<std::int64_t> Seconds(E e, std::string_view key) {
  element value;
  if (e.at_key(key).get(value) != simdjson::SUCCESS) return std::nullopt;
  std::int64_t seconds = 0;
  if (value.get(seconds) == simdjson::SUCCESS) return seconds;
  double real = 0;
  if (value.get(real) == simdjson::SUCCESS) return static_cast<std::int64_t>(real);
  std::string_view text;
  if (value.get(text) != simdjson::SUCCESS) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return seconds;
}

// An event time: upstream's, never later than `now`.
Instant EventTime(element e, std::string_view key, Instant now) {
  const auto seconds = Seconds(e, key);
  if (!seconds) return now;
  const Instant t = FromUnixSeconds(*seconds);
  return t > now ? now : t;
}

template <class E>
bool Flag(E e, std::string_view key) {
  bool value = false;
  if (e.at_key(key).get(value) == simdjson::SUCCESS) return value;
  return EqualsIgnoreCase(Str(e, key), "true");
}

class Parser {
 public:
  explicit Parser(Instant now) : now_(now) {}

  void Change(element change) {
    const std::string_view field = Str(change, "field");
    element value;
    if (change.at_key("value").get(value) != simdjson::SUCCESS) {
      ++out_.ignored;
      return;
    }
    const std::string_view phone_number_id = Str(value["metadata"], "phone_number_id");
    if (field == "messages") {
      Messages(value, phone_number_id);
    } else if (field == "calls") {
      Calls(value, phone_number_id);
      Statuses(value, phone_number_id);
    } else if (field == "account_settings_update") {
      Settings(value, phone_number_id);
    } else {
      ++out_.ignored;
    }
  }

  ParsedWebhook Take() { return std::move(out_); }

 private:
  void Add(std::string_view phone_number_id, std::string_view user, Event event,
           bool user_call = false) {
    if (phone_number_id.empty() || user.empty()) {
      ++out_.ignored;
      return;
    }
    out_.items.push_back(
        {std::string(phone_number_id), std::string(user), std::move(event), user_call});
  }

  void Messages(element value, std::string_view phone_number_id) {
    for (element message : Items(value, "messages")) {
      element reply;
      if (Str(message, "type") != "interactive" ||
          Str(message["interactive"], "type") != "call_permission_reply" ||
          message["interactive"]["call_permission_reply"].get(reply) != simdjson::SUCCESS) {
        ++out_.ignored;
        continue;
      }
      const Instant at = EventTime(message, "timestamp", now_);
      const std::string_view response = Str(reply, "response");
      const bool automatic = Str(reply, "response_source") == "automatic";
      const std::string_view context = Str(message["context"], "id");
      const std::string_view user = Str(message, "from");
      if (response != "accept" && response != "reject") {
        ++out_.ignored;
        continue;
      }
      // The platform's automatic accept for a callback names the call: it is the same grant as
      // the call's own, so both paths merge into one fact.
      if (response == "accept" && automatic && context.starts_with("wacid.")) {
        Add(phone_number_id, user, CallbackGranted{std::string(context), at});
        continue;
      }
      PermissionReplied event{std::string(Str(message, "id")),
                              at,
                              response == "accept",
                              Flag(reply, "is_permanent"),
                              std::nullopt,
                              automatic ? ReplySource::kAutomatic : ReplySource::kUserAction};
      if (event.message_id.empty()) {
        ++out_.ignored;
        continue;
      }
      if (event.accepted && !event.permanent) {
        if (const auto expiry = Seconds(reply, "expiration_timestamp")) {
          event.expires_at = FromUnixSeconds(*expiry);
        }
      }
      Add(phone_number_id, user, std::move(event));
    }
  }

  void Calls(element value, std::string_view phone_number_id) {
    const std::string_view business_number = Str(value["metadata"], "display_phone_number");
    for (element call : Items(value, "calls")) {
      const std::string id(Str(call, "id"));
      const std::string_view kind = Str(call, "event");
      const std::string_view direction_text = Str(call, "direction");
      const std::string_view from = Str(call, "from");
      const bool user_initiated = direction_text.empty()
                                      ? (business_number.empty() || from != business_number)
                                      : EqualsIgnoreCase(direction_text, "USER_INITIATED");
      const CallDirection direction =
          user_initiated ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
      const std::string_view user = user_initiated ? from : Str(call, "to");
      const std::string authorization(Str(call, "biz_opaque_callback_data"));
      const Instant at = EventTime(call, "timestamp", now_);
      if (id.empty()) {
        ++out_.ignored;
      } else if (kind == "connect") {
        Add(phone_number_id, user, CallConnected{id, at, direction, authorization}, user_initiated);
      } else if (kind == "terminate") {
        CallTerminated event{id, at, direction, false, std::nullopt, authorization};
        event.picked_up = Has(call, "start_time") || Has(call, "duration");
        if (const auto start = Seconds(call, "start_time")) {
          event.started_at = std::min(FromUnixSeconds(*start), now_);
        } else if (const auto end = Seconds(call, "end_time")) {
          if (const auto duration = Seconds(call, "duration")) {
            event.started_at = std::min(FromUnixSeconds(*end - *duration), now_);
          }
        }
        Add(phone_number_id, user, std::move(event), user_initiated);
      } else {
        ++out_.ignored;
      }
    }
  }

  void Statuses(element value, std::string_view phone_number_id) {
    for (element status : Items(value, "statuses")) {
      if (Str(status, "type") != "call" || !EqualsIgnoreCase(Str(status, "status"), "REJECTED")) {
        ++out_.ignored;
        continue;
      }
      const std::string id(Str(status, "id"));
      if (id.empty()) {
        ++out_.ignored;
        continue;
      }
      Add(phone_number_id, Str(status, "recipient_id"),
          CallRejected{id, EventTime(status, "timestamp", now_),
                       std::string(Str(status, "biz_opaque_callback_data"))});
    }
  }

  // Meta nests the phone number's settings in slightly different places across versions; accept
  // each, require the phone_number_id and an explicit ENABLED/DISABLED.
  void Settings(element value, std::string_view phone_number_id) {
    std::string_view pnid = phone_number_id;
    if (pnid.empty()) pnid = Str(value, "phone_number_id");
    element settings = value;
    element nested;
    if (value.at_key("phone_number_settings").get(nested) == simdjson::SUCCESS) {
      settings = nested;
      if (pnid.empty()) pnid = Str(nested, "phone_number_id");
    }
    const std::string_view status = Str(settings["calling"], "callback_permission_status");
    if (pnid.empty() || (status != "ENABLED" && status != "DISABLED")) {
      ++out_.ignored;
      return;
    }
    out_.settings.push_back({std::string(pnid), status == "ENABLED"});
  }

  Instant now_;
  ParsedWebhook out_;
};

}  // namespace

Result<ParsedWebhook, WebhookError> ParseMetaWebhook(std::string_view body, Instant now) {
  thread_local simdjson::dom::parser json;  // keeps its buffers between deliveries
  element root;
  if (json.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    return WebhookError::kMalformedJson;
  }
  if (!root.is_object()) return WebhookError::kNotAnObject;
  Parser parser(now);
  if (Str(root, "object") != "whatsapp_business_account") {
    ParsedWebhook ignored;
    ignored.ignored = 1;
    return ignored;
  }
  for (element entry : Items(root, "entry")) {
    for (element change : Items(entry, "changes")) parser.Change(change);
  }
  return parser.Take();
}

}  // namespace callgate

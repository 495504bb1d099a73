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

// Unix seconds, as a string or a number; nullopt if absent or not a number of seconds this side
// of 2^62 (so no conversion or later arithmetic can overflow).
template <class E>
std::optional<std::int64_t> Seconds(E e, std::string_view key) {
  constexpr std::int64_t kLimit = std::int64_t{1} << 62;
  element value;
  if (e.at_key(key).get(value) != simdjson::SUCCESS) return std::nullopt;
  std::int64_t seconds = 0;
  double real = 0;
  std::string_view text;
  if (value.get(seconds) == simdjson::SUCCESS) {
    // As it is.
  } else if (value.get(real) == simdjson::SUCCESS) {
    if (!(real > -static_cast<double>(kLimit) && real < static_cast<double>(kLimit))) {
      return std::nullopt;  // also NaN
    }
    seconds = static_cast<std::int64_t>(real);
  } else if (value.get(text) == simdjson::SUCCESS) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (seconds <= -kLimit || seconds >= kLimit) return std::nullopt;
  return seconds;
}

// A time in seconds if it lies in [kEarliestTime, now + slack]; nullopt otherwise.
std::optional<Instant> SaneTime(std::int64_t seconds, Instant now, Millis slack) {
  const auto latest =
      std::chrono::duration_cast<std::chrono::seconds>((now + slack).time_since_epoch());
  const auto earliest =
      std::chrono::duration_cast<std::chrono::seconds>(kEarliestTime.time_since_epoch());
  if (seconds < earliest.count() || seconds > latest.count()) return std::nullopt;
  return FromUnixSeconds(seconds);
}

// A field that may be absent: absent reads as `missing`; present, it must be a sane time.
struct TimeField {
  bool valid = true;
  std::optional<Instant> at;
};

template <class E>
TimeField ReadTime(E e, std::string_view key, Instant now, Millis slack) {
  if (!Has(e, key)) return {};
  const auto seconds = Seconds(e, key);
  const auto at = seconds ? SaneTime(*seconds, now, slack) : std::nullopt;
  return {at.has_value(), at};
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
    if (change.at_key("value").get(value) != simdjson::SUCCESS || !value.is_object()) {
      out_.Ignore(IgnoreReason::kNoValue);
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
    } else if (field == "user_id_update") {
      UserIdUpdates(value, phone_number_id);
    } else {
      out_.Ignore(IgnoreReason::kOtherField);
    }
  }

  ParsedWebhook Take() { return std::move(out_); }

 private:
  // An event's time: upstream's, never later than now; absent reads as now. Out of range: the
  // item is counted as invalid and nullopt returned.
  std::optional<Instant> EventTimeOf(element e) {
    const TimeField field = ReadTime(e, "timestamp", now_, kEventTimeSlack);
    if (!field.valid) {
      ++out_.invalid_time;
      return std::nullopt;
    }
    return std::min(field.at.value_or(now_), now_);
  }

  void Add(std::string_view phone_number_id, UpstreamUser user, Event event,
           bool user_call = false) {
    if (phone_number_id.empty()) return out_.Ignore(IgnoreReason::kMissingPhoneNumberId);
    if (user.empty()) return out_.Ignore(IgnoreReason::kMissingUser);
    // Its ids were learnt where it was read, its contact's in ReadContacts: the two links share
    // an id, so the store joins them into one user.
    CompleteFromContacts(user);
    out_.items.push_back(
        {std::string(phone_number_id), std::move(user), std::move(event), user_call});
  }

  // Notes ids seen together (two or more) for linking.
  void Learn(std::string_view phone_number_id, const UpstreamUser& user,
             std::string_view previous = {}, std::string_view previous_parent = {},
             Instant at = {}) {
    const int ids = !user.phone_digits.empty() + !user.bsuid.empty() + !user.parent_bsuid.empty() +
                    !previous.empty() + !previous_parent.empty();
    if (phone_number_id.empty() || ids < 2) return;
    out_.links.push_back({std::string(phone_number_id), user, std::string(previous),
                          std::string(previous_parent), at});
  }

  // `user_id_update`: a user's BSUID (and parent BSUID) rotated; the previous and the current
  // one name the same user, as does the phone number when given.
  void UserIdUpdates(element value, std::string_view phone_number_id) {
    for (element update : Items(value, "user_id_update")) {
      UpstreamUser user{std::string(Str(update, "wa_id")),
                        std::string(Str(update["user_id"], "current")),
                        std::string(Str(update["parent_user_id"], "current"))};
      const std::string_view previous = Str(update["user_id"], "previous");
      const std::string_view previous_parent = Str(update["parent_user_id"], "previous");
      if (phone_number_id.empty()) {
        out_.Ignore(IgnoreReason::kMissingPhoneNumberId);
        continue;
      }
      if (user.bsuid.empty() || previous.empty()) {
        out_.Ignore(IgnoreReason::kMissingUser);
        continue;
      }
      const auto time = EventTimeOf(update);
      if (!time) continue;
      Learn(phone_number_id, user, previous, previous_parent, *time);
      ++out_.rotations;
    }
  }

  // The user an item names by `phone`, `bsuid` and `parent` (fields of `e`).
  static UpstreamUser UserOf(element e, std::string_view phone, std::string_view bsuid,
                             std::string_view parent) {
    return {std::string(Str(e, phone)), std::string(Str(e, bsuid)), std::string(Str(e, parent))};
  }

  // A change's `contacts[]`: the users its items are about, each with the ids the delivery
  // knows (wa_id, user_id, parent_user_id). An item naming a user by one id learns the others.
  void ReadContacts(element value) {
    contacts_.clear();
    for (element contact : Items(value, "contacts")) {
      UpstreamUser user = UserOf(contact, "wa_id", "user_id", "parent_user_id");
      if (user.empty()) continue;
      Learn(phone_number_id_, user);
      contacts_.push_back(std::move(user));
    }
  }

  void CompleteFromContacts(UpstreamUser& user) const {
    for (const UpstreamUser& contact : contacts_) {
      const bool same = (!user.phone_digits.empty() && user.phone_digits == contact.phone_digits) ||
                        (!user.bsuid.empty() && user.bsuid == contact.bsuid);
      if (!same) continue;
      if (user.phone_digits.empty()) user.phone_digits = contact.phone_digits;
      if (user.bsuid.empty()) user.bsuid = contact.bsuid;
      if (user.parent_bsuid.empty()) user.parent_bsuid = contact.parent_bsuid;
    }
  }

  void Messages(element value, std::string_view phone_number_id) {
    phone_number_id_ = phone_number_id;
    ReadContacts(value);
    for (element message : Items(value, "messages")) {
      // The user's new BSUID, as a system message: `from_user_id` the previous one.
      if (Str(message["system"], "type") == "user_changed_user_id") {
        const std::string_view current = Str(message["system"], "user_id");
        const std::string_view previous = Str(message, "from_user_id");
        if (phone_number_id.empty()) {
          out_.Ignore(IgnoreReason::kMissingPhoneNumberId);
        } else if (current.empty() || previous.empty()) {
          out_.Ignore(IgnoreReason::kMissingUser);
        } else if (const auto time = EventTimeOf(message)) {
          Learn(phone_number_id, {std::string(Str(message, "from")), std::string(current), ""},
                previous, {}, *time);
          ++out_.rotations;
        }
        continue;
      }
      // Any message naming its user by several ids links them, whatever else it is.
      Learn(phone_number_id, UserOf(message, "from", "from_user_id", "from_parent_user_id"));
      element reply;
      // By interactive.type alone: Meta's own samples of these replies have no message-level
      // `type` (docs/rules.md §5).
      if (Str(message["interactive"], "type") != "call_permission_reply" ||
          message["interactive"]["call_permission_reply"].get(reply) != simdjson::SUCCESS ||
          !reply.is_object()) {
        out_.Ignore(IgnoreReason::kNotPermissionReply);
        continue;
      }
      const std::string_view response = Str(reply, "response");
      const bool automatic = Str(reply, "response_source") == "automatic";
      const std::string_view context = Str(message["context"], "id");
      UpstreamUser user = UserOf(message, "from", "from_user_id", "from_parent_user_id");
      if (response != "accept" && response != "reject") {
        out_.Ignore(IgnoreReason::kUnknownResponse);
        continue;
      }
      const auto time = EventTimeOf(message);
      if (!time) continue;
      const Instant at = *time;
      // The platform's automatic accept for a callback names the call: it is the same grant as
      // the call's own, so both paths merge into one fact.
      if (response == "accept" && automatic && context.starts_with("wacid.")) {
        Add(phone_number_id, std::move(user), CallbackGranted{std::string(context), at});
        continue;
      }
      PermissionReplied event{std::string(Str(message, "id")),
                              at,
                              response == "accept",
                              Flag(reply, "is_permanent"),
                              std::nullopt,
                              automatic ? ReplySource::kAutomatic : ReplySource::kUserAction};
      if (event.message_id.empty()) {
        out_.Ignore(IgnoreReason::kMissingMessageId);
        continue;
      }
      if (event.accepted && !event.permanent) {
        const TimeField expiry = ReadTime(reply, "expiration_timestamp", now_, kExpirySlack);
        if (!expiry.valid) {
          ++out_.invalid_time;
          continue;
        }
        event.expires_at = expiry.at;
      }
      Add(phone_number_id, std::move(user), std::move(event));
    }
  }

  void Calls(element value, std::string_view phone_number_id) {
    phone_number_id_ = phone_number_id;
    ReadContacts(value);
    const std::string_view business_number = Str(value["metadata"], "display_phone_number");
    for (element call : Items(value, "calls")) {
      const std::string id(Str(call, "id"));
      const std::string_view kind = Str(call, "event");
      const std::string_view direction_text = Str(call, "direction");
      const std::string_view from = Str(call, "from");
      // Without a direction: the user's BSUID says which side the user is on; else a caller
      // other than the business number is the user.
      bool user_initiated = false;
      if (!direction_text.empty()) {
        user_initiated = EqualsIgnoreCase(direction_text, "USER_INITIATED");
      } else if (Has(call, "from_user_id") || Has(call, "to_user_id")) {
        user_initiated = Has(call, "from_user_id");
      } else {
        user_initiated = business_number.empty() || from != business_number;
      }
      const CallDirection direction =
          user_initiated ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
      UpstreamUser user = user_initiated
                              ? UserOf(call, "from", "from_user_id", "from_parent_user_id")
                              : UserOf(call, "to", "to_user_id", "to_parent_user_id");
      Learn(phone_number_id, user);  // whatever the event, its ids name one user
      const std::string authorization(Str(call, "biz_opaque_callback_data"));
      if (id.empty()) {
        out_.Ignore(IgnoreReason::kMissingCallId);
        continue;
      }
      if (kind != "connect" && kind != "terminate") {
        out_.Ignore(IgnoreReason::kOtherCallEvent);
        continue;
      }
      const auto time = EventTimeOf(call);
      if (!time) continue;
      const Instant at = *time;
      if (kind == "connect") {
        Add(phone_number_id, std::move(user), CallConnected{id, at, direction, authorization},
            user_initiated);
      } else if (kind == "terminate") {
        CallTerminated event{id, at, direction, false, std::nullopt, authorization};
        event.picked_up = Has(call, "start_time") || Has(call, "duration");
        std::optional<Instant> started;
        if (Has(call, "start_time")) {
          started = ReadTime(call, "start_time", now_, kEventTimeSlack).at;
        } else if (const auto end = Seconds(call, "end_time")) {
          if (const auto duration = Seconds(call, "duration")) {
            started = SaneTime(*end - *duration, now_, kEventTimeSlack);
          }
        }
        // A start time out of range is not trusted: the call still counts as picked up.
        if (started) event.started_at = std::min(*started, now_);
        Add(phone_number_id, std::move(user), std::move(event), user_initiated);
      }
    }
  }

  void Statuses(element value, std::string_view phone_number_id) {
    for (element status : Items(value, "statuses")) {
      // Any status naming its user by several ids links them (ringing, accepted, ...).
      Learn(phone_number_id,
            UserOf(status, "recipient_id", "recipient_user_id", "recipient_parent_user_id"));
      if (Str(status, "type") != "call" || !EqualsIgnoreCase(Str(status, "status"), "REJECTED")) {
        out_.Ignore(IgnoreReason::kNotCallRejection);
        continue;
      }
      const std::string id(Str(status, "id"));
      if (id.empty()) {
        out_.Ignore(IgnoreReason::kMissingStatusId);
        continue;
      }
      const auto time = EventTimeOf(status);
      if (!time) continue;
      Add(phone_number_id,
          UserOf(status, "recipient_id", "recipient_user_id", "recipient_parent_user_id"),
          CallRejected{id, *time, std::string(Str(status, "biz_opaque_callback_data"))});
    }
  }

  // Meta nests the phone number's settings in slightly different places across versions; accept
  // each, require the phone_number_id and an explicit ENABLED/DISABLED. The number the settings
  // are of is the one phone_number_settings names (such updates have no metadata); else the
  // metadata's, else the value's own.
  void Settings(element value, std::string_view phone_number_id) {
    element settings = value;
    element nested;
    std::string_view pnid;
    if (value.at_key("phone_number_settings").get(nested) == simdjson::SUCCESS) {
      settings = nested;
      pnid = Str(nested, "phone_number_id");
    }
    if (pnid.empty()) pnid = phone_number_id;
    if (pnid.empty()) pnid = Str(value, "phone_number_id");
    const std::string_view status = Str(settings["calling"], "callback_permission_status");
    if (status != "ENABLED" && status != "DISABLED") {
      return out_.Ignore(IgnoreReason::kSettingsWithoutCalling);
    }
    if (pnid.empty()) return out_.Ignore(IgnoreReason::kMissingPhoneNumberId);
    out_.settings.push_back({std::string(pnid), status == "ENABLED"});
  }

  Instant now_;
  ParsedWebhook out_;
  std::vector<UpstreamUser> contacts_;  // of the change being read
  std::string_view phone_number_id_;    // of the change being read
};

}  // namespace

std::string_view IgnoreReasonName(IgnoreReason reason) {
  switch (reason) {
    case IgnoreReason::kNotBusinessAccount:
      return "notBusinessAccount";
    case IgnoreReason::kNoValue:
      return "noValue";
    case IgnoreReason::kOtherField:
      return "otherField";
    case IgnoreReason::kNotPermissionReply:
      return "notPermissionReply";
    case IgnoreReason::kUnknownResponse:
      return "unknownResponse";
    case IgnoreReason::kMissingMessageId:
      return "missingMessageId";
    case IgnoreReason::kMissingCallId:
      return "missingCallId";
    case IgnoreReason::kOtherCallEvent:
      return "otherCallEvent";
    case IgnoreReason::kNotCallRejection:
      return "notCallRejection";
    case IgnoreReason::kMissingStatusId:
      return "missingStatusId";
    case IgnoreReason::kMissingPhoneNumberId:
      return "missingPhoneNumberId";
    case IgnoreReason::kMissingUser:
      return "missingUser";
    case IgnoreReason::kSettingsWithoutCalling:
      return "settingsWithoutCalling";
  }
  return "unknown";
}

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
    ignored.Ignore(IgnoreReason::kNotBusinessAccount);
    return ignored;
  }
  for (element entry : Items(root, "entry")) {
    for (element change : Items(entry, "changes")) parser.Change(change);
  }
  return parser.Take();
}

}  // namespace callgate

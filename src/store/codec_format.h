// The vocabulary of the storage codec's bytes (codec.cc): the format version, the tag that names
// a stored event's kind, the forms of a packed id, and the bits of every packed flags byte. Every
// value here is in existing stores, so none may ever change: add new values, never renumber, and
// pin each addition in codec_test.cc. In particular nothing here follows the order of a C++ type
// (the Event variant, PermissionStatus): reordering those must not move a byte on disk.
// Only codec.cc and its tests need this header. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/events.h"
#include "core/ledger.h"

namespace callgate::codec {

// Version 2: packed ids, delta-coded times. (Version 1 spelled ids out and times in full.)
constexpr std::uint8_t kFormatVersion = 2;

// --- Event tags ------------------------------------------------------------------------------

// The kind of a stored history event. The values are the positions the kinds had in the Event
// variant when version 2 was written, and stay so whatever order the variant lists them in.
enum class EventTag : std::uint8_t {
  kPermissionRequested = 0,
  kPermissionReplied = 1,
  kCallConnected = 2,
  kCallTerminated = 3,
  kCallRejected = 4,
  kCallbackGranted = 5,
  kCallAuthorized = 6,
  kNoticeFinalized = 7,  // storage layout 5
  kUserIdChanged = 8,    // storage layout 7
};
constexpr EventTag kLastEventTag = EventTag::kUserIdChanged;

// The tag of each kind of event, one overload per kind: an Event member without one fails to
// compile (in EventTagOf) instead of being stored under some other kind's tag.
constexpr EventTag TagOf(std::type_identity<PermissionRequested>) {
  return EventTag::kPermissionRequested;
}
constexpr EventTag TagOf(std::type_identity<PermissionReplied>) {
  return EventTag::kPermissionReplied;
}
constexpr EventTag TagOf(std::type_identity<CallConnected>) { return EventTag::kCallConnected; }
constexpr EventTag TagOf(std::type_identity<CallTerminated>) { return EventTag::kCallTerminated; }
constexpr EventTag TagOf(std::type_identity<CallRejected>) { return EventTag::kCallRejected; }
constexpr EventTag TagOf(std::type_identity<CallbackGranted>) { return EventTag::kCallbackGranted; }
constexpr EventTag TagOf(std::type_identity<CallAuthorized>) { return EventTag::kCallAuthorized; }
constexpr EventTag TagOf(std::type_identity<NoticeFinalized>) { return EventTag::kNoticeFinalized; }
constexpr EventTag TagOf(std::type_identity<UserIdChanged>) { return EventTag::kUserIdChanged; }

template <typename Kind>
constexpr EventTag kTagOf = TagOf(std::type_identity<Kind>{});

inline EventTag EventTagOf(const Event& event) {
  return std::visit([](const auto& e) { return kTagOf<std::decay_t<decltype(e)>>; }, event);
}

namespace internal {
template <std::size_t... I>
constexpr bool EveryKindHasItsOwnTag(std::index_sequence<I...>) {
  const EventTag tags[] = {kTagOf<std::variant_alternative_t<I, Event>>...};
  for (std::size_t i = 0; i < sizeof...(I); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (tags[i] == tags[j]) return false;
    }
  }
  return true;
}
}  // namespace internal
static_assert(
    internal::EveryKindHasItsOwnTag(std::make_index_sequence<std::variant_size_v<Event>>()),
    "two kinds of event share an EventTag: their stored events would be confused");
static_assert(static_cast<std::size_t>(kLastEventTag) + 1 == std::variant_size_v<Event>,
              "every EventTag names a kind of Event, and kLastEventTag is the last of them");

// --- Packed ids ------------------------------------------------------------------------------

// How an id is packed. Each form maps a set of texts one-to-one onto byte strings, and the sets
// are disjoint (a text qualifies for one form at most, else it is kRaw), so (form, bytes)
// identifies the text. A form takes 3 bits wherever it is stored.
enum class IdForm : std::uint8_t {
  kRaw = 0,   // the text itself
  kUuid = 1,  // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower-case hex: the 16 bytes
  // "wamid." / "wacid." + base64 (RFC 4648 alphabet) that decodes and re-encodes to exactly the
  // same text (no stray bits), without or with '=' padding: the decoded bytes.
  kWamid = 2,
  kWamidPadded = 3,
  kWacid = 4,
  kWacidPadded = 5,
};
constexpr IdForm kLastIdForm = IdForm::kWacidPadded;
constexpr int kIdFormBits = 3;
constexpr std::uint8_t kIdFormMask = 0x07;

// A packed id outside an event key starts with a varint header: the byte count shifted left by
// kIdFormBits, then the form; a UUID's header is the form alone (its count is implied).
struct IdHeader {
  std::uint64_t size = 0;
  std::uint8_t form = 0;  // an IdForm, if the header is valid

  constexpr std::uint64_t Pack() const { return size << kIdFormBits | form; }
  static constexpr IdHeader Unpack(std::uint64_t header) {
    return {header >> kIdFormBits, static_cast<std::uint8_t>(header & kIdFormMask)};
  }
};

// An event key's first byte: the event's tag, then its id's form; the packed id follows.
struct KeyHead {
  std::uint8_t tag = 0;   // an EventTag, if the byte is valid
  std::uint8_t form = 0;  // an IdForm, if the byte is valid

  constexpr std::uint8_t Pack() const {
    return static_cast<std::uint8_t>(tag << kIdFormBits | form);
  }
  static constexpr KeyHead Unpack(std::uint8_t byte) {
    return {static_cast<std::uint8_t>(byte >> kIdFormBits),
            static_cast<std::uint8_t>(byte & kIdFormMask)};
  }
};

// --- Flags bytes -----------------------------------------------------------------------------
// Each packed byte has its named bits and one struct that packs and unpacks it.

// A state's flags byte, after the version byte: the baseline's permission status in the low
// nibble, then which optional parts follow.
constexpr std::uint8_t kStateStatusMask = 0x0f;
constexpr std::uint8_t kStateHasExpiry = 0x10;      // the permission's expiry
constexpr std::uint8_t kStateHasHorizon = 0x20;     // the baseline's horizon
constexpr std::uint8_t kStateHasUnanswered = 0x40;  // a consecutive-unanswered count above 0
constexpr std::uint8_t kStateHasMore = 0x80;        // calls, holds and replays (else none of them)

// The status nibble's values.
constexpr std::uint8_t kStatusNotGranted = 0;
constexpr std::uint8_t kStatusTemporary = 1;
constexpr std::uint8_t kStatusPermanent = 2;

// A finalized notice's kind: the details' first byte.
constexpr std::uint8_t kNoticeReconsiderShown = 0;
constexpr std::uint8_t kNoticeAutoRevoked = 1;
constexpr std::uint8_t kNoticeExpired = 2;

constexpr std::uint8_t PackNoticeKind(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kReconsiderShown:
      return kNoticeReconsiderShown;
    case NoticeKind::kAutoRevoked:
      return kNoticeAutoRevoked;
    case NoticeKind::kExpired:
      return kNoticeExpired;
  }
  return kNoticeExpired;
}

// nullopt if the byte is not a kind this version knows.
constexpr std::optional<NoticeKind> UnpackNoticeKind(std::uint8_t byte) {
  switch (byte) {
    case kNoticeReconsiderShown:
      return NoticeKind::kReconsiderShown;
    case kNoticeAutoRevoked:
      return NoticeKind::kAutoRevoked;
    case kNoticeExpired:
      return NoticeKind::kExpired;
    default:
      return std::nullopt;
  }
}

struct StateFlags {
  PermissionStatus status = PermissionStatus::kNotGranted;
  bool has_expiry = false;
  bool has_horizon = false;
  bool has_unanswered = false;
  bool has_more = false;

  constexpr std::uint8_t Pack() const {
    std::uint8_t byte = kStatusNotGranted;
    switch (status) {
      case PermissionStatus::kNotGranted:
        byte = kStatusNotGranted;
        break;
      case PermissionStatus::kTemporary:
        byte = kStatusTemporary;
        break;
      case PermissionStatus::kPermanent:
        byte = kStatusPermanent;
        break;
    }
    return static_cast<std::uint8_t>(
        byte | (has_expiry ? kStateHasExpiry : 0) | (has_horizon ? kStateHasHorizon : 0) |
        (has_unanswered ? kStateHasUnanswered : 0) | (has_more ? kStateHasMore : 0));
  }
  // nullopt if the status is not one this version knows.
  static constexpr std::optional<StateFlags> Unpack(std::uint8_t byte) {
    StateFlags flags;
    switch (byte & kStateStatusMask) {
      case kStatusNotGranted:
        flags.status = PermissionStatus::kNotGranted;
        break;
      case kStatusTemporary:
        flags.status = PermissionStatus::kTemporary;
        break;
      case kStatusPermanent:
        flags.status = PermissionStatus::kPermanent;
        break;
      default:
        return std::nullopt;
    }
    flags.has_expiry = byte & kStateHasExpiry;
    flags.has_horizon = byte & kStateHasHorizon;
    flags.has_unanswered = byte & kStateHasUnanswered;
    flags.has_more = byte & kStateHasMore;
    return flags;
  }
};

// A reply's flags byte: in a state's replies, and in a PermissionReplied's details.
constexpr std::uint8_t kReplyAccepted = 0x01;
constexpr std::uint8_t kReplyPermanent = 0x02;
constexpr std::uint8_t kReplyHasExpiry = 0x04;
constexpr std::uint8_t kReplyAutomatic = 0x08;  // ReplySource::kAutomatic, else kUserAction
constexpr std::uint8_t kReplyKnownBits = 0x0f;

struct ReplyFlags {
  bool accepted = false;
  bool permanent = false;
  bool has_expiry = false;
  bool automatic = false;

  constexpr std::uint8_t Pack() const {
    return static_cast<std::uint8_t>(
        (accepted ? kReplyAccepted : 0) | (permanent ? kReplyPermanent : 0) |
        (has_expiry ? kReplyHasExpiry : 0) | (automatic ? kReplyAutomatic : 0));
  }
  // nullopt if a bit this version does not know is set.
  static constexpr std::optional<ReplyFlags> Unpack(std::uint8_t byte) {
    if (byte & ~kReplyKnownBits) return std::nullopt;
    return ReplyFlags{.accepted = (byte & kReplyAccepted) != 0,
                      .permanent = (byte & kReplyPermanent) != 0,
                      .has_expiry = (byte & kReplyHasExpiry) != 0,
                      .automatic = (byte & kReplyAutomatic) != 0};
  }
};

// The flags byte of a call event's details (CallConnected, CallTerminated, CallRejected).
constexpr std::uint8_t kCallEventUserInitiated = 0x01;  // CallDirection::kUserInitiated
constexpr std::uint8_t kCallEventPickedUp = 0x02;
constexpr std::uint8_t kCallEventHasStart = 0x04;
constexpr std::uint8_t kCallEventHasAuthorization = 0x08;
constexpr std::uint8_t kCallEventKnownBits = 0x0f;

struct CallEventFlags {
  bool user_initiated = false;
  bool picked_up = false;
  bool has_start = false;
  bool has_authorization = false;

  constexpr std::uint8_t Pack() const {
    return static_cast<std::uint8_t>((user_initiated ? kCallEventUserInitiated : 0) |
                                     (picked_up ? kCallEventPickedUp : 0) |
                                     (has_start ? kCallEventHasStart : 0) |
                                     (has_authorization ? kCallEventHasAuthorization : 0));
  }
  // nullopt if a bit this version does not know is set.
  static constexpr std::optional<CallEventFlags> Unpack(std::uint8_t byte) {
    if (byte & ~kCallEventKnownBits) return std::nullopt;
    return CallEventFlags{.user_initiated = (byte & kCallEventUserInitiated) != 0,
                          .picked_up = (byte & kCallEventPickedUp) != 0,
                          .has_start = (byte & kCallEventHasStart) != 0,
                          .has_authorization = (byte & kCallEventHasAuthorization) != 0};
  }
};

// The flags byte of a call's facts in a state: which of its times and its authorisation follow.
constexpr std::uint8_t kCallUserInitiated = 0x01;  // CallDirection::kUserInitiated
constexpr std::uint8_t kCallPickedUp = 0x02;
constexpr std::uint8_t kCallHasConnected = 0x04;
constexpr std::uint8_t kCallHasStarted = 0x08;
constexpr std::uint8_t kCallHasTerminated = 0x10;
constexpr std::uint8_t kCallHasRejected = 0x20;
constexpr std::uint8_t kCallHasCallback = 0x40;
constexpr std::uint8_t kCallHasAuthorization = 0x80;

struct CallFlags {
  bool user_initiated = false;
  bool picked_up = false;
  bool has_connected = false;
  bool has_started = false;
  bool has_terminated = false;
  bool has_rejected = false;
  bool has_callback = false;
  bool has_authorization = false;

  constexpr std::uint8_t Pack() const {
    return static_cast<std::uint8_t>(
        (user_initiated ? kCallUserInitiated : 0) | (picked_up ? kCallPickedUp : 0) |
        (has_connected ? kCallHasConnected : 0) | (has_started ? kCallHasStarted : 0) |
        (has_terminated ? kCallHasTerminated : 0) | (has_rejected ? kCallHasRejected : 0) |
        (has_callback ? kCallHasCallback : 0) | (has_authorization ? kCallHasAuthorization : 0));
  }
  // Every bit has a meaning: any byte unpacks.
  static constexpr CallFlags Unpack(std::uint8_t byte) {
    return {.user_initiated = (byte & kCallUserInitiated) != 0,
            .picked_up = (byte & kCallPickedUp) != 0,
            .has_connected = (byte & kCallHasConnected) != 0,
            .has_started = (byte & kCallHasStarted) != 0,
            .has_terminated = (byte & kCallHasTerminated) != 0,
            .has_rejected = (byte & kCallHasRejected) != 0,
            .has_callback = (byte & kCallHasCallback) != 0,
            .has_authorization = (byte & kCallHasAuthorization) != 0};
  }
};

}  // namespace callgate::codec

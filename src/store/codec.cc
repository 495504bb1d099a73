#include "store/codec.h"

#include <array>
#include <cstdint>
#include <string>

#include "core/encoding.h"
#include "store/codec_format.h"

namespace callgate {
namespace {

using codec::EventTag;
using codec::IdForm;

// --- Ids -------------------------------------------------------------------------------------

constexpr std::uint8_t FormByte(IdForm form) { return static_cast<std::uint8_t>(form); }

constexpr std::string_view kWamidPrefix = "wamid.";
constexpr std::string_view kWacidPrefix = "wacid.";
static_assert(kWamidPrefix.size() == kWacidPrefix.size());

// Each form below takes a text only if unpacking the bytes it makes gives that very text back, so
// a form is one-to-one by construction, however lenient the decoder underneath.

// The two UUID conversions below are hand-written instead of HexEncode/HexDecode plus string
// surgery: those made five allocations an id, and every stored state holds dozens of ids (its
// authorisations) that each read and write converts — `perf record` of the Redis Cluster status
// GET put UnpackUuid alone at 6 % of the client thread, PackIdBytes at 4-5 % of a reservation.

constexpr char kLowerHexDigits[] = "0123456789abcdef";

// Where a UUID's 16 bytes are in its 36 characters (8-4-4-4-12 hex digits): each byte's two
// digits start at one of these; the dashes are at 8, 13, 18 and 23.
constexpr std::size_t kUuidBytePositions[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                                19, 21, 24, 26, 28, 30, 32, 34};

// The value of each lower-case hex digit, -1 for every other byte: upper case is not what
// UnpackUuid writes. (A table and a fixed walk, without a branch per digit: PackUuid was still
// ~10 % of callgate's CPU per call authorisation, a pair's state holding dozens of UUIDs.)
constexpr auto kLowerHexValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int d = 0; d < 10; ++d) values['0' + d] = static_cast<std::int8_t>(d);
  for (int d = 0; d < 6; ++d) values['a' + d] = static_cast<std::int8_t>(10 + d);
  return values;
}();

// Appends the text of a UUID's 16 bytes: lower-case hex digits in groups of 8-4-4-4-12.
void UnpackUuid(std::string_view bytes, std::string& id) {
  char text[36];
  text[8] = text[13] = text[18] = text[23] = '-';
  for (std::size_t i = 0; i < 16; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    text[kUuidBytePositions[i]] = kLowerHexDigits[byte >> 4];
    text[kUuidBytePositions[i] + 1] = kLowerHexDigits[byte & 0xf];
  }
  id.append(text, sizeof text);
}

// Appends the 16 bytes of `id` if it is a UUID as UnpackUuid writes it; false (and nothing
// appended) if not.
bool PackUuid(std::string_view id, std::string& out) {
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') {
    return false;
  }
  char bytes[16];
  int invalid = 0;  // negative once any digit is not one
  for (std::size_t i = 0; i < 16; ++i) {
    const int high = kLowerHexValues[static_cast<unsigned char>(id[kUuidBytePositions[i]])];
    const int low = kLowerHexValues[static_cast<unsigned char>(id[kUuidBytePositions[i] + 1])];
    invalid |= high | low;
    bytes[i] = static_cast<char>(high << 4 | low);
  }
  if (invalid < 0) return false;
  out.append(bytes, sizeof bytes);
  return true;
}

// "wamid."/"wacid." + base64: appends the bytes and returns the form, or kRaw.
IdForm PackBase64Id(std::string_view id, std::string& out) {
  bool wamid;
  if (id.starts_with(kWamidPrefix)) {
    wamid = true;
  } else if (id.starts_with(kWacidPrefix)) {
    wamid = false;
  } else {
    return IdForm::kRaw;
  }
  const std::string_view text = id.substr(kWamidPrefix.size());
  // Only padded base64 ends with '=', and padding changes the text only when it ends so.
  const bool padded = text.ends_with('=');
  const auto bytes =
      Base64DecodeExact(text, padded ? Base64Padding::kPadded : Base64Padding::kNone);
  if (!bytes) return IdForm::kRaw;
  out.append(*bytes);
  if (padded) return wamid ? IdForm::kWamidPadded : IdForm::kWacidPadded;
  return wamid ? IdForm::kWamid : IdForm::kWacid;
}

// Appends the packed bytes of `id`; returns their form.
IdForm PackIdBytes(std::string_view id, std::string& out) {
  if (PackUuid(id, out)) return IdForm::kUuid;
  const IdForm form = PackBase64Id(id, out);
  if (form != IdForm::kRaw) return form;
  out.append(id);
  return IdForm::kRaw;
}

// `form_byte` as stored: false if it names no form, or `bytes` are not that form's.
bool UnpackIdBytes(std::uint8_t form_byte, std::string_view bytes, std::string& id) {
  if (form_byte > FormByte(codec::kLastIdForm)) return false;
  const auto form = static_cast<IdForm>(form_byte);
  id.clear();
  switch (form) {
    case IdForm::kRaw:
      id.assign(bytes);
      return true;
    case IdForm::kUuid:
      if (bytes.size() != 16) return false;
      UnpackUuid(bytes, id);
      return true;
    case IdForm::kWamid:
    case IdForm::kWamidPadded:
    case IdForm::kWacid:
    case IdForm::kWacidPadded: {
      const bool padded = form == IdForm::kWamidPadded || form == IdForm::kWacidPadded;
      const bool wamid = form == IdForm::kWamid || form == IdForm::kWamidPadded;
      // Padding exists only when the last group is short; a padded form without it is corrupt.
      if (padded && bytes.size() % 3 == 0) return false;
      id.append(wamid ? kWamidPrefix : kWacidPrefix)
          .append(Base64Encode(bytes, padded ? Base64Padding::kPadded : Base64Padding::kNone));
      return true;
    }
  }
  return false;
}

// --- Bytes -----------------------------------------------------------------------------------

// Times are written as the difference from the previous time written (the first from `base`):
// the times of one state or event lie close together, so most take 3–5 bytes instead of 6.
class Writer {
 public:
  explicit Writer(std::int64_t base = 0) : last_time_(base) {}
  void Byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Varint(std::uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<std::uint8_t>(v));
  }
  void Signed(std::int64_t v) {  // zigzag
    Varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void Time(Instant t) {
    const std::int64_t millis = ToUnixMillis(t);
    Signed(static_cast<std::int64_t>(static_cast<std::uint64_t>(millis) -
                                     static_cast<std::uint64_t>(last_time_)));
    last_time_ = millis;
  }
  void String(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  // A packed id: its header (codec::IdHeader), then its bytes.
  void Id(std::string_view id) {
    scratch_.clear();
    const IdForm form = PackIdBytes(id, scratch_);
    Varint(
        codec::IdHeader{.size = form == IdForm::kUuid ? 0 : scratch_.size(), .form = FormByte(form)}
            .Pack());
    out_.append(scratch_);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string scratch_;
  std::int64_t last_time_;
};

class Reader {
 public:
  explicit Reader(std::string_view in, std::int64_t base = 0) : in_(in), last_time_(base) {}
  bool Byte(std::uint8_t& b) {
    if (pos_ >= in_.size()) return false;
    b = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }
  bool Varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!Byte(b)) return false;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Time(Instant& t) {
    std::uint64_t z;
    if (!Varint(z)) return false;
    const std::uint64_t delta = (z >> 1) ^ (~(z & 1) + 1);
    last_time_ = static_cast<std::int64_t>(static_cast<std::uint64_t>(last_time_) + delta);
    t = FromUnixMillis(last_time_);
    return true;
  }
  bool String(std::string& s) {
    std::uint64_t n;
    if (!Varint(n) || n > in_.size() - pos_) return false;
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool Id(std::string& id) {
    std::uint64_t varint;
    if (!Varint(varint)) return false;
    const auto header = codec::IdHeader::Unpack(varint);
    const bool uuid = header.form == FormByte(IdForm::kUuid);
    if (uuid && header.size != 0) return false;
    const std::uint64_t n = uuid ? 16 : header.size;
    if (n > in_.size() - pos_) return false;
    const std::string_view bytes = in_.substr(pos_, n);
    pos_ += n;
    return UnpackIdBytes(header.form, bytes, id);
  }
  bool Done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  std::int64_t last_time_;
};

void WriteOptionalTime(Writer& w, const std::optional<Instant>& t) {
  if (t) w.Time(*t);
}

bool ReadOptionalTime(Reader& r, bool present, std::optional<Instant>& t) {
  if (!present) return true;
  Instant value;
  if (!r.Time(value)) return false;
  t = value;
  return true;
}

}  // namespace

std::string PackId(std::string_view id) {
  std::string out(1, '\0');
  out[0] = static_cast<char>(FormByte(PackIdBytes(id, out)));
  return out;
}

std::optional<std::string> UnpackId(std::string_view packed) {
  std::string id;
  if (packed.empty() ||
      !UnpackIdBytes(static_cast<std::uint8_t>(packed[0]), packed.substr(1), id)) {
    return std::nullopt;
  }
  return id;
}

// --- Events ----------------------------------------------------------------------------------

// The key's first byte holds the event's tag and the id's form (codec::KeyHead); the packed id
// follows to the end.
std::string EncodeEventKey(const Event& event) {
  std::string key(1, '\0');
  const IdForm form = PackIdBytes(EventId(event), key);
  key[0] = static_cast<char>(codec::KeyHead{
      .tag = static_cast<std::uint8_t>(codec::EventTagOf(event)), .form = FormByte(form)}
                                 .Pack());
  return key;
}

std::string EncodeEventDetails(const Event& event) {
  Writer w(ToUnixMillis(EventTime(event)));  // times as offsets from the event's time
  struct Visitor {
    Writer& w;
    void operator()(const PermissionRequested&) {}
    void operator()(const PermissionReplied& e) {
      w.Byte(codec::ReplyFlags{.accepted = e.accepted,
                               .permanent = e.permanent,
                               .has_expiry = e.expires_at.has_value(),
                               .automatic = e.source == ReplySource::kAutomatic}
                 .Pack());
      WriteOptionalTime(w, e.expires_at);
    }
    void Call(CallDirection direction, bool picked_up, const std::optional<Instant>& started,
              const std::string& authorization) {
      w.Byte(codec::CallEventFlags{.user_initiated = direction == CallDirection::kUserInitiated,
                                   .picked_up = picked_up,
                                   .has_start = started.has_value(),
                                   .has_authorization = !authorization.empty()}
                 .Pack());
      WriteOptionalTime(w, started);
      if (!authorization.empty()) w.Id(authorization);
    }
    void operator()(const CallConnected& e) {
      Call(e.direction, false, std::nullopt, e.authorization_id);
    }
    void operator()(const CallTerminated& e) {
      Call(e.direction, e.picked_up, e.started_at, e.authorization_id);
    }
    void operator()(const CallRejected& e) {
      Call(CallDirection::kBusinessInitiated, false, std::nullopt, e.authorization_id);
    }
    void operator()(const CallbackGranted&) {}
    void operator()(const CallAuthorized& e) { w.Time(e.expires_at); }
    // The id (the key) names kind, time and cause for uniqueness; the details hold them apart.
    void operator()(const NoticeFinalized& e) {
      w.Byte(codec::PackNoticeKind(e.kind));
      w.Id(e.cause_id);
    }
    void operator()(const UserIdChanged& e) { w.Id(e.previous); }
  };
  std::visit(Visitor{w}, event);
  return w.Take();
}

std::optional<Event> DecodeEvent(std::string_view key, Instant at, std::string_view details) {
  if (key.empty()) return std::nullopt;
  const auto head = codec::KeyHead::Unpack(static_cast<std::uint8_t>(key[0]));
  if (head.tag > static_cast<std::uint8_t>(codec::kLastEventTag)) return std::nullopt;
  std::string id;
  if (!UnpackIdBytes(head.form, key.substr(1), id)) return std::nullopt;
  Reader r(details, ToUnixMillis(at));
  std::optional<Event> event;
  codec::CallEventFlags call;
  std::optional<Instant> started;
  std::string authorization;
  auto call_fields = [&] {
    std::uint8_t byte;
    if (!r.Byte(byte)) return false;
    const auto flags = codec::CallEventFlags::Unpack(byte);
    if (!flags) return false;
    call = *flags;
    return ReadOptionalTime(r, call.has_start, started) &&
           (!call.has_authorization || r.Id(authorization));
  };
  const auto direction = [&] {
    return call.user_initiated ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
  };
  // No default: a tag without a case here fails to compile (-Wswitch).
  switch (static_cast<EventTag>(head.tag)) {
    case EventTag::kPermissionRequested:
      event = PermissionRequested{std::move(id), at};
      break;
    case EventTag::kPermissionReplied: {
      PermissionReplied e{std::move(id), at};
      std::uint8_t byte;
      if (!r.Byte(byte)) return std::nullopt;
      const auto flags = codec::ReplyFlags::Unpack(byte);
      if (!flags || !ReadOptionalTime(r, flags->has_expiry, e.expires_at)) return std::nullopt;
      e.accepted = flags->accepted;
      e.permanent = flags->permanent;
      e.source = flags->automatic ? ReplySource::kAutomatic : ReplySource::kUserAction;
      event = std::move(e);
      break;
    }
    case EventTag::kCallConnected:
      if (!call_fields()) return std::nullopt;
      event = CallConnected{std::move(id), at, direction(), std::move(authorization)};
      break;
    case EventTag::kCallTerminated:
      if (!call_fields()) return std::nullopt;
      event = CallTerminated{std::move(id),  at,      direction(),
                             call.picked_up, started, std::move(authorization)};
      break;
    case EventTag::kCallRejected:
      if (!call_fields()) return std::nullopt;
      event = CallRejected{std::move(id), at, std::move(authorization)};
      break;
    case EventTag::kCallbackGranted:
      event = CallbackGranted{std::move(id), at};
      break;
    case EventTag::kCallAuthorized: {
      Instant expires;
      if (!r.Time(expires)) return std::nullopt;
      event = CallAuthorized{std::move(id), at, expires};
      break;
    }
    case EventTag::kNoticeFinalized: {
      std::uint8_t byte;
      std::string cause;
      if (!r.Byte(byte) || !r.Id(cause)) return std::nullopt;
      const auto kind = codec::UnpackNoticeKind(byte);
      if (!kind) return std::nullopt;
      NoticeFinalized notice = Finalized({*kind, at, std::move(cause)});
      if (notice.id != id) return std::nullopt;  // the key and the details disagree
      event = std::move(notice);
      break;
    }
    case EventTag::kUserIdChanged: {
      std::string previous;
      if (!r.Id(previous)) return std::nullopt;
      event = UserIdChanged{std::move(id), at, std::move(previous)};
      break;
    }
  }
  if (!event || !r.Done()) return std::nullopt;
  return event;
}

// --- Pair state ------------------------------------------------------------------------------

std::string EncodePairState(const PairState& state) {
  Writer w;
  w.Byte(codec::kFormatVersion);
  const Baseline& base = state.base;
  // What most pairs lack is left out: an unanswered count of 0, no calls or holds.
  const codec::StateFlags flags{.status = base.permission.status,
                                .has_expiry = base.permission.expires_at.has_value(),
                                .has_horizon = base.horizon.has_value(),
                                .has_unanswered = base.consecutive_unanswered != 0,
                                .has_more = !state.calls.empty() || !state.holds.empty()};
  w.Byte(flags.Pack());
  WriteOptionalTime(w, base.permission.expires_at);
  WriteOptionalTime(w, base.horizon);
  if (flags.has_unanswered) w.Varint(static_cast<std::uint64_t>(base.consecutive_unanswered));

  w.Varint(state.requests.size());
  for (const auto& [id, at] : state.requests) {
    w.Id(id);
    w.Time(at);
  }
  w.Varint(state.replies.size());
  for (const auto& [id, reply] : state.replies) {
    w.Id(id);
    w.Time(reply.at);
    w.Byte(codec::ReplyFlags{.accepted = reply.accepted,
                             .permanent = reply.permanent,
                             .has_expiry = reply.expires_at.has_value(),
                             .automatic = reply.source == ReplySource::kAutomatic}
               .Pack());
    WriteOptionalTime(w, reply.expires_at);
  }
  if (!flags.has_more) return w.Take();
  w.Varint(state.calls.size());
  for (const auto& [id, call] : state.calls) {
    w.Id(id);
    w.Byte(codec::CallFlags{.user_initiated = call.direction == CallDirection::kUserInitiated,
                            .picked_up = call.picked_up,
                            .has_connected = call.connected_at.has_value(),
                            .has_started = call.started_at.has_value(),
                            .has_terminated = call.terminated_at.has_value(),
                            .has_rejected = call.rejected_at.has_value(),
                            .has_callback = call.callback_at.has_value(),
                            .has_authorization = !call.authorization_id.empty()}
               .Pack());
    for (const auto& t : {call.connected_at, call.started_at, call.terminated_at, call.rejected_at,
                          call.callback_at}) {
      WriteOptionalTime(w, t);
    }
    if (!call.authorization_id.empty()) w.Id(call.authorization_id);
  }
  w.Varint(state.holds.size());
  for (const auto& [id, hold] : state.holds) {
    w.Id(id);
    w.Time(hold.at);
    w.Time(hold.expires_at);
  }
  w.Varint(0);  // embedded idempotency records: none since layout 6
  return w.Take();
}

std::optional<PairState> DecodePairState(std::string_view bytes, EmbeddedRecords* embedded) {
  PairState state;
  if (bytes.empty()) return state;  // never written
  Reader r(bytes);
  std::uint8_t version, byte;
  if (!r.Byte(version) || version != codec::kFormatVersion || !r.Byte(byte)) return std::nullopt;
  const auto flags = codec::StateFlags::Unpack(byte);
  if (!flags) return std::nullopt;
  state.base.permission.status = flags->status;
  std::uint64_t n = 0;
  if (!ReadOptionalTime(r, flags->has_expiry, state.base.permission.expires_at) ||
      !ReadOptionalTime(r, flags->has_horizon, state.base.horizon) ||
      (flags->has_unanswered && (!r.Varint(n) || n == 0 || n > 1'000'000))) {
    return std::nullopt;
  }
  state.base.consecutive_unanswered = static_cast<int>(n);

  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    Instant at;
    if (!r.Id(id) || !r.Time(at)) return std::nullopt;
    state.requests.emplace_hint(state.requests.end(), std::move(id), at);
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    ReplyFact reply;
    if (!r.Id(id) || !r.Time(reply.at) || !r.Byte(byte)) return std::nullopt;
    const auto reply_flags = codec::ReplyFlags::Unpack(byte);
    if (!reply_flags || !ReadOptionalTime(r, reply_flags->has_expiry, reply.expires_at)) {
      return std::nullopt;
    }
    reply.accepted = reply_flags->accepted;
    reply.permanent = reply_flags->permanent;
    reply.source = reply_flags->automatic ? ReplySource::kAutomatic : ReplySource::kUserAction;
    state.replies.emplace_hint(state.replies.end(), std::move(id), reply);
  }
  if (!flags->has_more) return r.Done() ? std::optional(std::move(state)) : std::nullopt;
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    CallFacts call;
    if (!r.Id(id) || !r.Byte(byte)) return std::nullopt;
    const auto call_flags = codec::CallFlags::Unpack(byte);
    if (!ReadOptionalTime(r, call_flags.has_connected, call.connected_at) ||
        !ReadOptionalTime(r, call_flags.has_started, call.started_at) ||
        !ReadOptionalTime(r, call_flags.has_terminated, call.terminated_at) ||
        !ReadOptionalTime(r, call_flags.has_rejected, call.rejected_at) ||
        !ReadOptionalTime(r, call_flags.has_callback, call.callback_at) ||
        (call_flags.has_authorization && !r.Id(call.authorization_id))) {
      return std::nullopt;
    }
    call.direction = call_flags.user_initiated ? CallDirection::kUserInitiated
                                               : CallDirection::kBusinessInitiated;
    call.picked_up = call_flags.picked_up;
    state.calls.emplace_hint(state.calls.end(), std::move(id), std::move(call));
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    Hold hold;
    if (!r.Id(id) || !r.Time(hold.at) || !r.Time(hold.expires_at)) return std::nullopt;
    state.holds.emplace_hint(state.holds.end(), std::move(id), hold);
  }
  std::uint64_t records = 0;
  if (!r.Varint(records) || (records != 0 && !embedded)) return std::nullopt;
  for (std::uint64_t i = 0; i < records; ++i) {
    std::string key;
    IdempotencyRecord record;
    if (!r.String(key) || !r.Time(record.at) || !r.Id(record.result_id)) return std::nullopt;
    embedded->emplace_back(std::move(key), std::move(record));
  }
  // The flag is set only when something follows it.
  if (!r.Done() || (state.calls.empty() && state.holds.empty() && records == 0)) {
    return std::nullopt;
  }
  return state;
}

}  // namespace callgate

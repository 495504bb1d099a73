#include "store/codec.h"

#include <array>
#include <cstdint>

namespace callgate {
namespace {

// Version 2: packed ids, delta-coded times. (Version 1 spelled ids out and times in full.)
constexpr std::uint8_t kFormatVersion = 2;

// --- Ids -------------------------------------------------------------------------------------

// How an id is packed. Each form maps a set of texts one-to-one onto byte strings, and the sets
// are disjoint (a text qualifies for one form at most, else it is kRaw), so (form, bytes)
// identifies the text.
enum IdForm : std::uint8_t {
  kRaw = 0,   // the text itself
  kUuid = 1,  // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower-case hex: the 16 bytes
  // "wamid." / "wacid." + base64 (RFC 4648 alphabet) that decodes and re-encodes to exactly the
  // same text (no stray bits), without or with '=' padding: the decoded bytes.
  kWamid = 2,
  kWamidPadded = 3,
  kWacid = 4,
  kWacidPadded = 5,
};

constexpr std::string_view kWamidPrefix = "wamid.";
constexpr std::string_view kWacidPrefix = "wacid.";
static_assert(kWamidPrefix.size() == kWacidPrefix.size());
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kHexDigits[] = "0123456789abcdef";

constexpr std::array<std::int8_t, 256> Base64Values() {
  std::array<std::int8_t, 256> values{};
  for (auto& v : values) v = -1;
  for (int i = 0; i < 64; ++i) {
    values[static_cast<unsigned char>(kBase64[i])] = static_cast<std::int8_t>(i);
  }
  return values;
}
constexpr std::array<std::int8_t, 256> kBase64Values = Base64Values();

int LowerHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsUuidDash(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

bool PackUuid(std::string_view id, std::string& out) {
  if (id.size() != 36) return false;
  const std::size_t start = out.size();
  int high = -1;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (IsUuidDash(i)) {
      if (id[i] != '-') break;
      continue;
    }
    const int v = LowerHex(id[i]);
    if (v < 0) break;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high << 4 | v));
      high = -1;
    }
  }
  if (out.size() - start == 16) return true;
  out.resize(start);
  return false;
}

void UnpackUuid(std::string_view bytes, std::string& id) {
  id.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    const auto b = static_cast<unsigned char>(bytes[i]);
    id.push_back(kHexDigits[b >> 4]);
    id.push_back(kHexDigits[b & 15]);
  }
}

// Appends the bytes of canonical unpadded base64 `text`; false (and nothing appended) if it is
// not that.
bool DecodeBase64(std::string_view text, std::string& out) {
  if (text.size() % 4 == 1) return false;
  const std::size_t start = out.size();
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    const int v = kBase64Values[static_cast<unsigned char>(c)];
    if (v < 0) {
      out.resize(start);
      return false;
    }
    bits = bits << 6 | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>(bits >> count));
      bits &= (1u << count) - 1;
    }
  }
  if (bits != 0) {  // stray low bits: another text decodes to the same bytes
    out.resize(start);
    return false;
  }
  return true;
}

void EncodeBase64(std::string_view bytes, std::string& out) {
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : bytes) {
    bits = bits << 8 | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kBase64[(bits >> count) & 63]);
    }
  }
  if (count > 0) out.push_back(kBase64[(bits << (6 - count)) & 63]);
}

// "wamid."/"wacid." + base64: appends the bytes and returns the form, or kRaw.
IdForm PackBase64Id(std::string_view id, std::string& out) {
  IdForm form;
  if (id.starts_with(kWamidPrefix)) {
    form = kWamid;
  } else if (id.starts_with(kWacidPrefix)) {
    form = kWacid;
  } else {
    return kRaw;
  }
  std::string_view text = id.substr(kWamidPrefix.size());
  std::size_t padding = 0;
  while (!text.empty() && text.back() == '=' && padding < 2) {
    text.remove_suffix(1);
    ++padding;
  }
  // Padding, when present, must be exactly what completes the last group of four.
  if (padding > 0 && (text.size() + padding) % 4 != 0) return kRaw;
  if (!DecodeBase64(text, out)) return kRaw;
  return static_cast<IdForm>(form + (padding > 0 ? 1 : 0));
}

// Appends the packed bytes of `id`; returns their form.
IdForm PackIdBytes(std::string_view id, std::string& out) {
  if (PackUuid(id, out)) return kUuid;
  const IdForm form = PackBase64Id(id, out);
  if (form != kRaw) return form;
  out.append(id);
  return kRaw;
}

bool UnpackIdBytes(std::uint8_t form, std::string_view bytes, std::string& id) {
  id.clear();
  switch (form) {
    case kRaw:
      id.assign(bytes);
      return true;
    case kUuid:
      if (bytes.size() != 16) return false;
      UnpackUuid(bytes, id);
      return true;
    case kWamid:
    case kWamidPadded:
    case kWacid:
    case kWacidPadded: {
      const bool padded = form == kWamidPadded || form == kWacidPadded;
      // Padding exists only when the last group is short; a padded form without it is corrupt.
      if (padded && bytes.size() % 3 == 0) return false;
      id.reserve(kWamidPrefix.size() + (bytes.size() + 2) / 3 * 4);
      id.append(form <= kWamidPadded ? kWamidPrefix : kWacidPrefix);
      EncodeBase64(bytes, id);
      if (padded) id.append(3 - bytes.size() % 3, '=');
      return true;
    }
    default:
      return false;
  }
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
  // A packed id: one varint naming the form and the length (a UUID's is implied), then bytes.
  void Id(std::string_view id) {
    scratch_.clear();
    const IdForm form = PackIdBytes(id, scratch_);
    Varint(form == kUuid ? std::uint64_t{kUuid} : (scratch_.size() << 3 | form));
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
    std::uint64_t header;
    if (!Varint(header)) return false;
    const auto form = static_cast<std::uint8_t>(header & 7);
    if (form == kUuid && header != kUuid) return false;
    const std::uint64_t n = form == kUuid ? 16 : header >> 3;
    if (n > in_.size() - pos_) return false;
    const std::string_view bytes = in_.substr(pos_, n);
    pos_ += n;
    return UnpackIdBytes(form, bytes, id);
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
  out[0] = static_cast<char>(PackIdBytes(id, out));
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

// The key's first byte holds the event kind (its variant index) and the id's form; the packed id
// follows to the end.
std::string EncodeEventKey(const Event& event) {
  std::string key(1, '\0');
  const IdForm form = PackIdBytes(EventId(event), key);
  key[0] = static_cast<char>(event.index() << 3 | form);
  return key;
}

std::string EncodeEventDetails(const Event& event) {
  Writer w(ToUnixMillis(EventTime(event)));  // times as offsets from the event's time
  struct Visitor {
    Writer& w;
    void operator()(const PermissionRequested&) {}
    void operator()(const PermissionReplied& e) {
      w.Byte((e.accepted ? 1 : 0) | (e.permanent ? 2 : 0) | (e.expires_at ? 4 : 0) |
             (e.source == ReplySource::kAutomatic ? 8 : 0));
      WriteOptionalTime(w, e.expires_at);
    }
    void Call(std::uint8_t bits, const std::optional<Instant>& started,
              const std::string& authorization) {
      w.Byte(bits | (started ? 4 : 0) | (authorization.empty() ? 0 : 8));
      WriteOptionalTime(w, started);
      if (!authorization.empty()) w.Id(authorization);
    }
    void operator()(const CallConnected& e) {
      Call(e.direction == CallDirection::kUserInitiated ? 1 : 0, std::nullopt, e.authorization_id);
    }
    void operator()(const CallTerminated& e) {
      Call((e.direction == CallDirection::kUserInitiated ? 1 : 0) | (e.picked_up ? 2 : 0),
           e.started_at, e.authorization_id);
    }
    void operator()(const CallRejected& e) { Call(0, std::nullopt, e.authorization_id); }
    void operator()(const CallbackGranted&) {}
    void operator()(const CallAuthorized& e) { w.Time(e.expires_at); }
  };
  std::visit(Visitor{w}, event);
  return w.Take();
}

std::optional<Event> DecodeEvent(std::string_view key, Instant at, std::string_view details) {
  if (key.empty()) return std::nullopt;
  const auto head = static_cast<std::uint8_t>(key[0]);
  std::string id;
  if (!UnpackIdBytes(head & 7, key.substr(1), id)) return std::nullopt;
  Reader r(details, ToUnixMillis(at));
  std::optional<Event> event;
  std::uint8_t bits = 0;
  std::optional<Instant> started;
  std::string authorization;
  auto call_fields = [&] {
    return r.Byte(bits) && bits < 16 && ReadOptionalTime(r, bits & 4, started) &&
           (!(bits & 8) || r.Id(authorization));
  };
  const auto direction = [&] {
    return (bits & 1) ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
  };
  switch (head >> 3) {
    case 0:
      event = PermissionRequested{std::move(id), at};
      break;
    case 1: {
      PermissionReplied e{std::move(id), at};
      if (!r.Byte(bits) || bits >= 16 || !ReadOptionalTime(r, bits & 4, e.expires_at)) {
        return std::nullopt;
      }
      e.accepted = bits & 1;
      e.permanent = bits & 2;
      e.source = (bits & 8) ? ReplySource::kAutomatic : ReplySource::kUserAction;
      event = std::move(e);
      break;
    }
    case 2:
      if (!call_fields()) return std::nullopt;
      event = CallConnected{std::move(id), at, direction(), std::move(authorization)};
      break;
    case 3:
      if (!call_fields()) return std::nullopt;
      event = CallTerminated{std::move(id),   at,      direction(),
                             (bits & 2) != 0, started, std::move(authorization)};
      break;
    case 4:
      if (!call_fields()) return std::nullopt;
      event = CallRejected{std::move(id), at, std::move(authorization)};
      break;
    case 5:
      event = CallbackGranted{std::move(id), at};
      break;
    case 6: {
      Instant expires;
      if (!r.Time(expires)) return std::nullopt;
      event = CallAuthorized{std::move(id), at, expires};
      break;
    }
    default:
      return std::nullopt;
  }
  if (!r.Done()) return std::nullopt;
  return event;
}

// --- Pair state ------------------------------------------------------------------------------

std::string EncodePairState(const PairState& state) {
  Writer w;
  w.Byte(kFormatVersion);
  const Baseline& base = state.base;
  // What most pairs lack is left out: an unanswered count of 0, no calls, holds or replays.
  const bool unanswered = base.consecutive_unanswered != 0;
  const bool more = !state.calls.empty() || !state.holds.empty() || !state.replays.empty();
  w.Byte(static_cast<std::uint8_t>(base.permission.status) |
         (base.permission.expires_at ? 0x10 : 0) | (base.horizon ? 0x20 : 0) |
         (unanswered ? 0x40 : 0) | (more ? 0x80 : 0));
  WriteOptionalTime(w, base.permission.expires_at);
  WriteOptionalTime(w, base.horizon);
  if (unanswered) w.Varint(static_cast<std::uint64_t>(base.consecutive_unanswered));

  w.Varint(state.requests.size());
  for (const auto& [id, at] : state.requests) {
    w.Id(id);
    w.Time(at);
  }
  w.Varint(state.replies.size());
  for (const auto& [id, reply] : state.replies) {
    w.Id(id);
    w.Time(reply.at);
    w.Byte((reply.accepted ? 1 : 0) | (reply.permanent ? 2 : 0) | (reply.expires_at ? 4 : 0) |
           (reply.source == ReplySource::kAutomatic ? 8 : 0));
    WriteOptionalTime(w, reply.expires_at);
  }
  if (!more) return w.Take();
  w.Varint(state.calls.size());
  for (const auto& [id, call] : state.calls) {
    w.Id(id);
    w.Byte((call.direction == CallDirection::kUserInitiated ? 1 : 0) | (call.picked_up ? 2 : 0) |
           (call.connected_at ? 4 : 0) | (call.started_at ? 8 : 0) | (call.terminated_at ? 16 : 0) |
           (call.rejected_at ? 32 : 0) | (call.callback_at ? 64 : 0) |
           (call.authorization_id.empty() ? 0 : 128));
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
  w.Varint(state.replays.size());
  for (const auto& [key, replay] : state.replays) {
    w.String(key);
    w.Time(replay.at);
    w.Id(replay.result_id);
  }
  return w.Take();
}

std::optional<PairState> DecodePairState(std::string_view bytes) {
  PairState state;
  if (bytes.empty()) return state;  // never written
  Reader r(bytes);
  std::uint8_t version, flags;
  if (!r.Byte(version) || version != kFormatVersion || !r.Byte(flags)) return std::nullopt;
  const std::uint8_t status = flags & 0x0f;
  if (status > static_cast<std::uint8_t>(PermissionStatus::kPermanent)) return std::nullopt;
  state.base.permission.status = static_cast<PermissionStatus>(status);
  std::uint64_t n = 0;
  if (!ReadOptionalTime(r, flags & 0x10, state.base.permission.expires_at) ||
      !ReadOptionalTime(r, flags & 0x20, state.base.horizon) ||
      ((flags & 0x40) && (!r.Varint(n) || n == 0 || n > 1'000'000))) {
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
    std::uint8_t bits;
    if (!r.Id(id) || !r.Time(reply.at) || !r.Byte(bits) ||
        !ReadOptionalTime(r, bits & 4, reply.expires_at)) {
      return std::nullopt;
    }
    reply.accepted = bits & 1;
    reply.permanent = bits & 2;
    reply.source = (bits & 8) ? ReplySource::kAutomatic : ReplySource::kUserAction;
    state.replies.emplace_hint(state.replies.end(), std::move(id), reply);
  }
  if (!(flags & 0x80)) return r.Done() ? std::optional(std::move(state)) : std::nullopt;
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    CallFacts call;
    std::uint8_t bits;
    if (!r.Id(id) || !r.Byte(bits) || !ReadOptionalTime(r, bits & 4, call.connected_at) ||
        !ReadOptionalTime(r, bits & 8, call.started_at) ||
        !ReadOptionalTime(r, bits & 16, call.terminated_at) ||
        !ReadOptionalTime(r, bits & 32, call.rejected_at) ||
        !ReadOptionalTime(r, bits & 64, call.callback_at)) {
      return std::nullopt;
    }
    if ((bits & 128) && !r.Id(call.authorization_id)) return std::nullopt;
    call.direction = (bits & 1) ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
    call.picked_up = bits & 2;
    state.calls.emplace_hint(state.calls.end(), std::move(id), std::move(call));
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    Hold hold;
    if (!r.Id(id) || !r.Time(hold.at) || !r.Time(hold.expires_at)) return std::nullopt;
    state.holds.emplace_hint(state.holds.end(), std::move(id), hold);
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string key;
    Replay replay;
    if (!r.String(key) || !r.Time(replay.at) || !r.Id(replay.result_id)) return std::nullopt;
    state.replays.emplace_hint(state.replays.end(), std::move(key), std::move(replay));
  }
  // The flag is set only when something follows it.
  if (!r.Done() || (state.calls.empty() && state.holds.empty() && state.replays.empty())) {
    return std::nullopt;
  }
  return state;
}

}  // namespace callgate

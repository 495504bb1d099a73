#include "store/codec.h"

#include <cstdint>

namespace callgate {
namespace {

constexpr std::uint8_t kFormatVersion = 1;

class Writer {
 public:
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
  void Time(Instant t) { Signed(ToUnixMillis(t)); }
  void String(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
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
    t = FromUnixMillis(static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1)));
    return true;
  }
  bool String(std::string& s) {
    std::uint64_t n;
    if (!Varint(n) || n > in_.size() - pos_) return false;
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool Done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
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

std::string EncodeEvent(const Event& event) {
  Writer w;
  w.Byte(kFormatVersion);
  w.Byte(static_cast<std::uint8_t>(event.index()));
  struct Visitor {
    Writer& w;
    void operator()(const PermissionRequested& e) {
      w.String(e.request_id);
      w.Time(e.at);
    }
    void operator()(const PermissionReplied& e) {
      w.String(e.message_id);
      w.Time(e.at);
      w.Byte((e.accepted ? 1 : 0) | (e.permanent ? 2 : 0) | (e.expires_at ? 4 : 0) |
             (e.source == ReplySource::kAutomatic ? 8 : 0));
      WriteOptionalTime(w, e.expires_at);
    }
    void Call(const std::string& id, Instant at, std::uint8_t bits,
              const std::optional<Instant>& started, const std::string& authorization) {
      w.String(id);
      w.Time(at);
      w.Byte(bits | (started ? 4 : 0));
      WriteOptionalTime(w, started);
      w.String(authorization);
    }
    void operator()(const CallConnected& e) {
      Call(e.call_id, e.at, e.direction == CallDirection::kUserInitiated ? 1 : 0, std::nullopt,
           e.authorization_id);
    }
    void operator()(const CallTerminated& e) {
      Call(e.call_id, e.at,
           (e.direction == CallDirection::kUserInitiated ? 1 : 0) | (e.picked_up ? 2 : 0),
           e.started_at, e.authorization_id);
    }
    void operator()(const CallRejected& e) {
      Call(e.call_id, e.at, 0, std::nullopt, e.authorization_id);
    }
    void operator()(const CallbackGranted& e) {
      w.String(e.call_id);
      w.Time(e.at);
    }
    void operator()(const CallAuthorized& e) {
      w.String(e.authorization_id);
      w.Time(e.at);
      w.Time(e.expires_at);
    }
  };
  std::visit(Visitor{w}, event);
  return w.Take();
}

std::optional<Event> DecodeEvent(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t version, index;
  if (!r.Byte(version) || version != kFormatVersion || !r.Byte(index)) return std::nullopt;
  std::string id;
  Instant at;
  if (!r.String(id) || !r.Time(at)) return std::nullopt;
  std::optional<Event> event;
  std::uint8_t bits = 0;
  std::optional<Instant> started;
  std::string authorization;
  auto call_fields = [&] {
    return r.Byte(bits) && ReadOptionalTime(r, bits & 4, started) && r.String(authorization);
  };
  const auto direction = [&] {
    return (bits & 1) ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
  };
  switch (index) {
    case 0:
      event = PermissionRequested{id, at};
      break;
    case 1: {
      PermissionReplied e{id, at};
      if (!r.Byte(bits) || !ReadOptionalTime(r, bits & 4, e.expires_at)) return std::nullopt;
      e.accepted = bits & 1;
      e.permanent = bits & 2;
      e.source = (bits & 8) ? ReplySource::kAutomatic : ReplySource::kUserAction;
      event = std::move(e);
      break;
    }
    case 2:
      if (!call_fields()) return std::nullopt;
      event = CallConnected{id, at, direction(), authorization};
      break;
    case 3:
      if (!call_fields()) return std::nullopt;
      event = CallTerminated{id, at, direction(), (bits & 2) != 0, started, authorization};
      break;
    case 4:
      if (!call_fields()) return std::nullopt;
      event = CallRejected{id, at, authorization};
      break;
    case 5:
      event = CallbackGranted{id, at};
      break;
    case 6: {
      Instant expires;
      if (!r.Time(expires)) return std::nullopt;
      event = CallAuthorized{id, at, expires};
      break;
    }
    default:
      return std::nullopt;
  }
  if (!r.Done()) return std::nullopt;
  return event;
}

std::string EncodePairState(const PairState& state) {
  Writer w;
  w.Byte(kFormatVersion);
  const Baseline& base = state.base;
  w.Byte(static_cast<std::uint8_t>(base.permission.status) |
         (base.permission.expires_at ? 0x10 : 0) | (base.horizon ? 0x20 : 0));
  WriteOptionalTime(w, base.permission.expires_at);
  WriteOptionalTime(w, base.horizon);
  w.Varint(static_cast<std::uint64_t>(base.consecutive_unanswered));

  w.Varint(state.requests.size());
  for (const auto& [id, at] : state.requests) {
    w.String(id);
    w.Time(at);
  }
  w.Varint(state.replies.size());
  for (const auto& [id, reply] : state.replies) {
    w.String(id);
    w.Time(reply.at);
    w.Byte((reply.accepted ? 1 : 0) | (reply.permanent ? 2 : 0) | (reply.expires_at ? 4 : 0) |
           (reply.source == ReplySource::kAutomatic ? 8 : 0));
    WriteOptionalTime(w, reply.expires_at);
  }
  w.Varint(state.calls.size());
  for (const auto& [id, call] : state.calls) {
    w.String(id);
    w.Byte((call.direction == CallDirection::kUserInitiated ? 1 : 0) | (call.picked_up ? 2 : 0) |
           (call.connected_at ? 4 : 0) | (call.started_at ? 8 : 0) | (call.terminated_at ? 16 : 0) |
           (call.rejected_at ? 32 : 0) | (call.callback_at ? 64 : 0) |
           (call.authorization_id.empty() ? 0 : 128));
    for (const auto& t : {call.connected_at, call.started_at, call.terminated_at, call.rejected_at,
                          call.callback_at}) {
      WriteOptionalTime(w, t);
    }
    if (!call.authorization_id.empty()) w.String(call.authorization_id);
  }
  w.Varint(state.holds.size());
  for (const auto& [id, hold] : state.holds) {
    w.String(id);
    w.Time(hold.at);
    w.Time(hold.expires_at);
  }
  w.Varint(state.replays.size());
  for (const auto& [key, replay] : state.replays) {
    w.String(key);
    w.Time(replay.at);
    w.String(replay.result_id);
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
  std::uint64_t n;
  if (!ReadOptionalTime(r, flags & 0x10, state.base.permission.expires_at) ||
      !ReadOptionalTime(r, flags & 0x20, state.base.horizon) || !r.Varint(n)) {
    return std::nullopt;
  }
  state.base.consecutive_unanswered = static_cast<int>(n);

  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    Instant at;
    if (!r.String(id) || !r.Time(at)) return std::nullopt;
    state.requests.emplace(std::move(id), at);
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    ReplyFact reply;
    std::uint8_t bits;
    if (!r.String(id) || !r.Time(reply.at) || !r.Byte(bits) ||
        !ReadOptionalTime(r, bits & 4, reply.expires_at)) {
      return std::nullopt;
    }
    reply.accepted = bits & 1;
    reply.permanent = bits & 2;
    reply.source = (bits & 8) ? ReplySource::kAutomatic : ReplySource::kUserAction;
    state.replies.emplace(std::move(id), reply);
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    CallFacts call;
    std::uint8_t bits;
    if (!r.String(id) || !r.Byte(bits) || !ReadOptionalTime(r, bits & 4, call.connected_at) ||
        !ReadOptionalTime(r, bits & 8, call.started_at) ||
        !ReadOptionalTime(r, bits & 16, call.terminated_at) ||
        !ReadOptionalTime(r, bits & 32, call.rejected_at) ||
        !ReadOptionalTime(r, bits & 64, call.callback_at)) {
      return std::nullopt;
    }
    if ((bits & 128) && !r.String(call.authorization_id)) return std::nullopt;
    call.direction = (bits & 1) ? CallDirection::kUserInitiated : CallDirection::kBusinessInitiated;
    call.picked_up = bits & 2;
    state.calls.emplace(std::move(id), std::move(call));
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string id;
    Hold hold;
    if (!r.String(id) || !r.Time(hold.at) || !r.Time(hold.expires_at)) return std::nullopt;
    state.holds.emplace(std::move(id), hold);
  }
  if (!r.Varint(n)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string key;
    Replay replay;
    if (!r.String(key) || !r.Time(replay.at) || !r.String(replay.result_id)) return std::nullopt;
    state.replays.emplace(std::move(key), std::move(replay));
  }
  if (!r.Done()) return std::nullopt;
  return state;
}

}  // namespace callgate

#include "store/codec.h"

#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "store/store_test_util.h"

namespace callgate {
namespace {

// Every field and flag set somewhere, plus values that stretch the encoding: times before the
// epoch, ids longer than one varint byte, more entries than one varint byte counts.
PairState RichState() {
  PairState s;
  s.base.permission = {PermissionStatus::kTemporary, kT0 + kDays7};
  s.base.consecutive_unanswered = 3;
  s.base.horizon = kT0 - Millis(12345);

  s.requests["req-1"] = kT0;
  s.requests["req-before-epoch"] = FromUnixMillis(-1);
  s.requests["req-epoch"] = FromUnixMillis(0);
  s.requests[std::string(300, 'r')] = kT0 + Millis(1);
  for (int i = 0; i < 200; ++i) s.requests["bulk-" + std::to_string(i)] = kT0 + Millis(i);

  s.replies["wamid-all-flags"] = {kT0 + Millis(10), true, true, kT0 + Millis(99),
                                  ReplySource::kAutomatic};
  s.replies["wamid-no-flags"] = {kT0 + Millis(11), false, false, std::nullopt,
                                 ReplySource::kUserAction};
  s.replies["wamid-temporary"] = {kT0 + Millis(12), true, false, kT0 + kDays7,
                                  ReplySource::kUserAction};

  CallFacts every_time;
  every_time.direction = CallDirection::kBusinessInitiated;
  every_time.connected_at = kT0 + Millis(20);
  every_time.started_at = kT0 + Millis(21);
  every_time.terminated_at = kT0 + Millis(22);
  every_time.rejected_at = kT0 + Millis(23);
  every_time.callback_at = kT0 + Millis(24);
  every_time.picked_up = true;
  every_time.authorization_id = "auth-1";
  s.calls["wacid-every-time"] = every_time;

  CallFacts user_initiated;
  user_initiated.direction = CallDirection::kUserInitiated;
  user_initiated.callback_at = kT0 + Millis(30);
  s.calls["wacid-user"] = user_initiated;

  CallFacts rejected_only;
  rejected_only.rejected_at = kT0 + Millis(40);
  rejected_only.authorization_id = std::string(200, 'a');
  s.calls["wacid-rejected"] = rejected_only;

  s.calls["wacid-bare"] = CallFacts{};

  s.holds["auth-1"] = {kT0 + Millis(50), kT0 + Millis(50) + std::chrono::minutes(5)};
  s.holds["auth-2"] = {kT0 + Millis(51), kT0 + Millis(52)};
  s.replays["permission_requests:idem-1"] = {kT0 + Millis(60), "req-1"};
  s.replays["call_authorizations:" + std::string(150, 'k')] = {kT0 + Millis(61), "auth-2"};
  return s;
}

TEST(CodecTest, EmptyStateRoundTrips) {
  const auto decoded = DecodePairState(EncodePairState(PairState{}));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, PairState{});
}

TEST(CodecTest, RichStateRoundTrips) {
  const PairState original = RichState();
  const auto decoded = DecodePairState(EncodePairState(original));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, original);
}

TEST(CodecTest, EveryBaselineRoundTrips) {
  const Baseline baselines[] = {
      {{PermissionStatus::kNotGranted, std::nullopt}, 0, std::nullopt},
      {{PermissionStatus::kNotGranted, std::nullopt}, 9, kT0},
      {{PermissionStatus::kTemporary, kT0 + Millis(1)}, 1, std::nullopt},
      {{PermissionStatus::kTemporary, kT0 + Millis(1)}, 2, kT0},
      {{PermissionStatus::kPermanent, std::nullopt}, 0, kT0 + Millis(5)},
      {{PermissionStatus::kPermanent, std::nullopt}, 1000, std::nullopt},
  };
  for (const Baseline& base : baselines) {
    PairState state;
    state.base = base;
    const auto decoded = DecodePairState(EncodePairState(state));
    ASSERT_TRUE(decoded.has_value()) << ::testing::PrintToString(state);
    EXPECT_EQ(*decoded, state);
  }
}

TEST(CodecTest, EmptyBytesDecodeToEmptyState) {
  const auto decoded = DecodePairState("");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, PairState{});
}

TEST(CodecTest, TruncatedBytesDoNotDecode) {
  for (const PairState& state : {PairState{}, RichState()}) {
    const std::string bytes = EncodePairState(state);
    for (std::size_t length = 1; length < bytes.size(); ++length) {
      EXPECT_FALSE(DecodePairState(std::string_view(bytes).substr(0, length)).has_value())
          << "prefix of " << length << " of " << bytes.size() << " bytes decoded";
    }
  }
}

TEST(CodecTest, TrailingBytesDoNotDecode) {
  EXPECT_FALSE(DecodePairState(EncodePairState(RichState()) + '\0').has_value());
  EXPECT_FALSE(DecodePairState(EncodePairState(PairState{}) + '\x01').has_value());
}

TEST(CodecTest, WrongVersionByteDoesNotDecode) {
  for (const PairState& state : {PairState{}, RichState()}) {
    std::string bytes = EncodePairState(state);
    ASSERT_FALSE(bytes.empty());
    for (const char version : {'\x00', '\x02', '\x7f', '\xff'}) {
      bytes[0] = version;
      EXPECT_FALSE(DecodePairState(bytes).has_value())
          << "version byte " << static_cast<int>(static_cast<unsigned char>(version));
    }
  }
}

TEST(CodecTest, UnknownPermissionStatusDoesNotDecode) {
  std::string bytes = EncodePairState(PairState{});
  ASSERT_GE(bytes.size(), 2u);
  bytes[1] = '\x03';  // the status nibble: one past kPermanent
  EXPECT_FALSE(DecodePairState(bytes).has_value());
}

// --- Events (history entries) ----------------------------------------------------------------

auto Tie(const PermissionRequested& e) { return std::tie(e.request_id, e.at); }
auto Tie(const PermissionReplied& e) {
  return std::tie(e.message_id, e.at, e.accepted, e.permanent, e.expires_at, e.source);
}
auto Tie(const CallConnected& e) {
  return std::tie(e.call_id, e.at, e.direction, e.authorization_id);
}
auto Tie(const CallTerminated& e) {
  return std::tie(e.call_id, e.at, e.direction, e.picked_up, e.started_at, e.authorization_id);
}
auto Tie(const CallRejected& e) { return std::tie(e.call_id, e.at, e.authorization_id); }
auto Tie(const CallbackGranted& e) { return std::tie(e.call_id, e.at); }
auto Tie(const CallAuthorized& e) { return std::tie(e.authorization_id, e.at, e.expires_at); }

bool SameEvent(const Event& a, const Event& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) { return Tie(x) == Tie(std::get<std::decay_t<decltype(x)>>(b)); }, a);
}

// Every kind of event, each with every field set, and again with only what it must have.
std::vector<Event> EveryEvent() {
  return {
      PermissionRequested{.request_id = "req-1", .at = kT0},
      PermissionRequested{.request_id = std::string(300, 'r'), .at = FromUnixMillis(-1)},
      PermissionReplied{.message_id = "wamid-1",
                        .at = kT0,
                        .accepted = true,
                        .permanent = true,
                        .expires_at = kT0 + kDays7,
                        .source = ReplySource::kAutomatic},
      PermissionReplied{.message_id = "wamid-2", .at = kT0},
      CallConnected{.call_id = "wacid-1",
                    .at = kT0,
                    .direction = CallDirection::kUserInitiated,
                    .authorization_id = "auth-1"},
      CallConnected{.call_id = "wacid-2", .at = kT0},
      CallTerminated{.call_id = "wacid-1",
                     .at = kT0 + Millis(30),
                     .direction = CallDirection::kUserInitiated,
                     .picked_up = true,
                     .started_at = kT0 + Millis(1),
                     .authorization_id = "auth-1"},
      CallTerminated{.call_id = "wacid-2", .at = kT0},
      CallRejected{.call_id = "wacid-3", .at = kT0, .authorization_id = "auth-3"},
      CallRejected{.call_id = "wacid-4", .at = kT0},
      CallbackGranted{.call_id = "wacid-5", .at = kT0},
      CallAuthorized{.authorization_id = "auth-6", .at = kT0, .expires_at = kT0 + Millis(300000)},
  };
}

TEST(CodecTest, EveryEventRoundTrips) {
  for (const Event& event : EveryEvent()) {
    const auto decoded = DecodeEvent(EncodeEvent(event));
    ASSERT_TRUE(decoded.has_value()) << EventKey(event);
    EXPECT_TRUE(SameEvent(*decoded, event)) << EventKey(event);
  }
}

TEST(CodecTest, TruncatedEventDoesNotDecode) {
  for (const Event& event : EveryEvent()) {
    const std::string bytes = EncodeEvent(event);
    for (std::size_t length = 0; length < bytes.size(); ++length) {
      EXPECT_FALSE(DecodeEvent(std::string_view(bytes).substr(0, length)).has_value())
          << EventKey(event) << ": prefix of " << length << " of " << bytes.size() << " bytes";
    }
    EXPECT_FALSE(DecodeEvent(bytes + '\0').has_value()) << EventKey(event) << " + trailing byte";
  }
}

TEST(CodecTest, EventWithWrongVersionOrUnknownKindDoesNotDecode) {
  std::string bytes = EncodeEvent(PermissionRequested{.request_id = "req-1", .at = kT0});
  ASSERT_GE(bytes.size(), 2u);
  std::string wrong_version = bytes;
  wrong_version[0] = '\x02';
  EXPECT_FALSE(DecodeEvent(wrong_version).has_value());
  std::string unknown_kind = bytes;
  unknown_kind[1] = static_cast<char>(std::variant_size_v<Event>);
  EXPECT_FALSE(DecodeEvent(unknown_kind).has_value());
}

}  // namespace
}  // namespace callgate

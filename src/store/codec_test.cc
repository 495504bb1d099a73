#include "store/codec.h"

#include <absl/strings/escaping.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "store/codec_format.h"
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
    for (const char version : {'\x00', '\x01', '\x03', '\x7f', '\xff'}) {
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

std::optional<Event> RoundTrip(const Event& event) {
  return DecodeEvent(EncodeEventKey(event), EventTime(event), EncodeEventDetails(event));
}

TEST(CodecTest, EveryEventRoundTrips) {
  for (const Event& event : EveryEvent()) {
    const auto decoded = RoundTrip(event);
    ASSERT_TRUE(decoded.has_value()) << EventKey(event);
    EXPECT_TRUE(SameEvent(*decoded, event)) << EventKey(event);
  }
}

TEST(CodecTest, EveryEventRoundTripsWithUpstreamShapedIds) {
  const std::string uuid = "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
  const std::string wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMA";
  const std::string wacid =
      "wacid."
      "HBgLMTIxMjU1NTEyMzQVAgASGCA3MDNGMEM3OTRFMTIzOTlGRUE0QTFBNDBGMTFFOEVBOBwYCzE1NTUxMjM0NTY3FQIA"
      "AA==";
  const std::vector<Event> events = {
      PermissionRequested{.request_id = uuid, .at = kT0},
      PermissionRequested{.request_id = wamid, .at = kT0},
      PermissionReplied{.message_id = wamid, .at = kT0, .accepted = true},
      CallTerminated{.call_id = wacid,
                     .at = kT0 + Millis(30),
                     .picked_up = true,
                     .started_at = kT0 - Millis(1),
                     .authorization_id = uuid},
      CallAuthorized{.authorization_id = uuid, .at = kT0, .expires_at = kT0 - Millis(1)},
  };
  for (const Event& event : events) {
    const auto decoded = RoundTrip(event);
    ASSERT_TRUE(decoded.has_value()) << EventKey(event);
    EXPECT_TRUE(SameEvent(*decoded, event)) << EventKey(event);
  }
}

// The id and the time live in the key and the `at` column; the details carry only the rest.
TEST(CodecTest, EventDetailsHoldNeitherIdNorTime) {
  EXPECT_EQ(EncodeEventDetails(PermissionRequested{.request_id = "req-1", .at = kT0}), "");
  EXPECT_EQ(EncodeEventDetails(CallbackGranted{.call_id = "wacid-1", .at = kT0}), "");
  const std::string reply =
      EncodeEventDetails(PermissionReplied{.message_id = "wamid-1", .at = kT0, .accepted = true});
  EXPECT_EQ(reply.size(), 1u);  // the flags byte
  // A temporary grant's expiry is a week after the reply: an offset, not a whole time.
  EXPECT_LE(
      EncodeEventDetails(
          PermissionReplied{
              .message_id = "wamid-1", .at = kT0, .accepted = true, .expires_at = kT0 + kDays7})
          .size(),
      6u);
}

TEST(CodecTest, TruncatedOrExtendedEventDetailsDoNotDecode) {
  for (const Event& event : EveryEvent()) {
    const std::string key = EncodeEventKey(event);
    const std::string details = EncodeEventDetails(event);
    for (std::size_t length = 0; length < details.size(); ++length) {
      EXPECT_FALSE(DecodeEvent(key, EventTime(event), std::string_view(details).substr(0, length)))
          << EventKey(event) << ": prefix of " << length << " of " << details.size() << " bytes";
    }
    EXPECT_FALSE(DecodeEvent(key, EventTime(event), details + '\0').has_value())
        << EventKey(event) << " + trailing byte";
  }
}

TEST(CodecTest, EventKeyWithUnknownKindOrFormDoesNotDecode) {
  const std::string key = EncodeEventKey(PermissionRequested{.request_id = "req-1", .at = kT0});
  ASSERT_FALSE(key.empty());
  EXPECT_TRUE(DecodeEvent(key, kT0, "").has_value());
  EXPECT_FALSE(DecodeEvent("", kT0, "").has_value());
  std::string unknown_kind = key;
  unknown_kind[0] = static_cast<char>(std::variant_size_v<Event> << 3);
  EXPECT_FALSE(DecodeEvent(unknown_kind, kT0, "").has_value());
  for (const char form : {'\x06', '\x07'}) {
    std::string unknown_form = key;
    unknown_form[0] = form;
    EXPECT_FALSE(DecodeEvent(unknown_form, kT0, "").has_value());
  }
}

// The stored key is the de-duplication key: equal exactly when EventKey is equal.
TEST(CodecTest, EventKeysAreEqualExactlyWhenEventKeysAre) {
  std::vector<Event> events;
  for (const std::string& id :
       {std::string("a"), std::string("wamid.AAAA"), std::string("wacid.AAAA"),
        std::string("wamid.AA=="), std::string("5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b")}) {
    events.push_back(PermissionRequested{.request_id = id, .at = kT0});
    events.push_back(PermissionReplied{.message_id = id, .at = kT0});
    events.push_back(CallConnected{.call_id = id, .at = kT0});
    events.push_back(CallTerminated{.call_id = id, .at = kT0});
    events.push_back(CallRejected{.call_id = id, .at = kT0});
    events.push_back(CallbackGranted{.call_id = id, .at = kT0});
    events.push_back(CallAuthorized{.authorization_id = id, .at = kT0, .expires_at = kT0});
  }
  for (const Event& a : events) {
    for (const Event& b : events) {
      EXPECT_EQ(EncodeEventKey(a) == EncodeEventKey(b), EventKey(a) == EventKey(b))
          << EventKey(a) << " vs " << EventKey(b);
    }
  }
}

// --- Packed ids ------------------------------------------------------------------------------

// Ids chosen at the edges of each packed form, and just outside them.
std::vector<std::string> EdgeIds() {
  return {
      "",
      "x",
      "req-1",
      std::string(300, 'r'),
      std::string("nul\0inside", 10),
      "\xff\xfe",
      "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",   // UUID: 16 bytes
      "00000000-0000-0000-0000-000000000000",   // UUID
      "5A61B97B-2C3D-4E5F-8A9B-0C1D2E3F4A5B",   // upper case: kept as text
      "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5",    // short
      "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b0",  // long
      "5a61b97b2c3d-4e5f-8a9b-0c1d2e3f4a5b-",   // dashes misplaced
      "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5g",   // not hex
      "wamid.",
      "wamid.A",  // no whole byte
      "wamid.AA",
      "wamid.AB",  // stray bits: would decode like "wamid.AA"
      "wamid.AAA",
      "wamid.AAB",  // stray bits
      "wamid.AAAA",
      "wamid.AA==",
      "wamid.AAA=",
      "wamid.AA=",    // short padding
      "wamid.AAA==",  // too much padding
      "wamid.AAAA==",
      "wamid.AA===",
      "wamid.=",
      "wamid.==",
      "wamid.A-_B",  // URL-safe alphabet: kept as text
      "wamid.+/+/",
      "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMA",
      "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMA=",
      "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMAAA==",
      "wamid.1",
      "WAMID.AAAA",
      "wamid-AAAA",
      "wacid.",
      "wacid.AAAA",
      "wacid.AA==",
      "wacid."
      "HBgLMTIxMjU1NTEyMzQVAgASGCA3MDNGMEM3OTRFMTIzOTlGRUE0QTFBNDBGMTFFOEVBOBwYCzE1NTUxMjM0NTY3FQIA"
      "AA",
      "wacid."
      "HBgLMTIxMjU1NTEyMzQVAgASGCA3MDNGMEM3OTRFMTIzOTlGRUE0QTFBNDBGMTFFOEVBOBwYCzE1NTUxMjM0NTY3FQIA"
      "AA==",
  };
}

TEST(CodecTest, PackedIdsRoundTripAndNeverCoincide) {
  std::map<std::string, std::string> by_packed;
  for (const std::string& id : EdgeIds()) {
    const std::string packed = PackId(id);
    EXPECT_EQ(UnpackId(packed), id) << "packed as form " << static_cast<int>(packed[0]);
    const auto [it, inserted] = by_packed.emplace(packed, id);
    EXPECT_TRUE(inserted) << '"' << id << "\" packs like \"" << it->second << '"';
  }
}

// Random texts over the characters the forms care about, in the shapes they accept.
TEST(CodecTest, RandomIdsRoundTripAndNeverCoincide) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "AB/+az09=-_f";
  const std::string prefixes[] = {"", "wamid.", "wacid.", "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f"};
  std::map<std::string, std::string> by_packed;
  for (int i = 0; i < 20000; ++i) {
    std::string id = prefixes[rng() % std::size(prefixes)];
    const std::size_t length = rng() % 12;
    for (std::size_t j = 0; j < length; ++j) id.push_back(alphabet[rng() % alphabet.size()]);
    const std::string packed = PackId(id);
    ASSERT_EQ(UnpackId(packed), id);
    const auto [it, inserted] = by_packed.emplace(packed, id);
    ASSERT_TRUE(inserted || it->second == id)
        << '"' << id << "\" packs like \"" << it->second << '"';
  }
}

// Every one-character change of a UUID: packed as 16 bytes exactly when the text is still what
// UnpackUuid writes (lower-case hex digits, dashes at 8, 13, 18 and 23), and back unchanged.
TEST(CodecTest, OneCharacterChangesOfAUuidPackOnlyWhileCanonical) {
  const std::string uuid = "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    for (char c : std::string("-09afAFg+ ")) {
      std::string id = uuid;
      id[i] = c;
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      const bool canonical = dash ? c == '-' : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      const std::string packed = PackId(id);
      EXPECT_EQ(UnpackId(packed), id);
      EXPECT_EQ(packed[0] == static_cast<char>(codec::IdForm::kUuid), canonical) << id;
      EXPECT_EQ(packed.size(), canonical ? 17u : 1u + id.size()) << id;
    }
  }
}

TEST(CodecTest, UpstreamShapedIdsPackSmall) {
  EXPECT_EQ(PackId("5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b").size(), 1u + 16u);
  const std::string wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMA";
  EXPECT_EQ(PackId(wamid).size(), 1 + (wamid.size() - 6) * 3 / 4);
}

TEST(CodecTest, CorruptPackedIdsDoNotUnpack) {
  EXPECT_FALSE(UnpackId("").has_value());
  EXPECT_FALSE(UnpackId(std::string("\x01", 1) + std::string(15, 'u')).has_value());
  EXPECT_FALSE(UnpackId(std::string("\x01", 1) + std::string(17, 'u')).has_value());
  EXPECT_FALSE(UnpackId("\x03"
                        "abc")
                   .has_value());  // padded form of whole groups: no padding
  EXPECT_FALSE(UnpackId("\x06"
                        "abc")
                   .has_value());
  EXPECT_FALSE(UnpackId("\x07").has_value());
}

// A pair as most are: one request (a UUID) and its reply (a ~60-character wamid) with a
// temporary grant.
TEST(CodecTest, TypicalStateIsSmall) {
  PairState state;
  state.requests["5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"] = kT0;
  const Instant replied = kT0 + Millis(1234567);
  state.replies["wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUQ5NzZGOTQ4QjMA"] = {
      replied, true, false, replied + kDays7, ReplySource::kUserAction};
  const std::string bytes = EncodePairState(state);
  EXPECT_LE(bytes.size(), 80u);  // version 1 of the encoding took 127
  EXPECT_EQ(DecodePairState(bytes), state);
}

TEST(CodecTest, StateWithUpstreamShapedIdsRoundTrips) {
  PairState state = RichState();
  for (const std::string& id : EdgeIds()) {
    state.requests[id] = kT0 - Millis(id.size());
    state.replies[id] = {kT0 + Millis(id.size()), true, false, kT0, ReplySource::kAutomatic};
    CallFacts call;
    call.authorization_id = id;
    call.connected_at = kT0;
    state.calls["wacid." + id] = call;
    state.holds[id] = {kT0, kT0 + Millis(1)};
  }
  const auto decoded = DecodePairState(EncodePairState(state));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, state);
}

// --- The format on disk ------------------------------------------------------------------------

// Bytes written by the version-2 encoder as it stood before its tags and flags were named
// (captured from commit 1c3206c), in hex. Stored data holds exactly these bytes, so they must
// keep decoding to the same values, and the encoder must keep writing them. If one of these
// tests fails, the change breaks every existing store: bump kFormatVersion and keep a reader for
// version 2 instead of editing the bytes here.
std::string Unhex(std::string_view hex) {
  return absl::HexStringToBytes(absl::string_view(hex.data(), hex.size()));
}

constexpr std::string_view kGoldenStateHex =
    "02f180b08fbffe62f1d0e5c0040302015a61b97b2c3d4e5f8a9b0c1d2e3f4a5bf2c001287265712d3101020b00"
    "18001a000000010fb20102150000001c000000ff9d0102020202015a61b97b2c3d4e5f8a9b0c1d2e3f4a5b0130"
    "617574682d3134c0cf2400";

TEST(CodecFormatTest, StateBytesFromBeforeStillDecode) {
  EXPECT_EQ(DecodePairState(Unhex(kGoldenStateHex)), GoldenState());
  EXPECT_EQ(absl::BytesToHexString(EncodePairState(GoldenState())), kGoldenStateHex);
}

TEST(CodecFormatTest, EmbeddedRecordsOfLayout5AreHandedOutNeverDropped) {
  EXPECT_EQ(DecodePairState(Unhex(kLayout5StateHex)), std::nullopt);
  EmbeddedRecords records;
  EXPECT_EQ(DecodePairState(Unhex(kLayout5StateHex), &records), GoldenState());
  const EmbeddedRecords want = {kLayout5Record};
  EXPECT_EQ(records, want);
}

// The other shapes of the state's flags byte: nothing set, and a permanent status alone.
TEST(CodecFormatTest, SmallStateBytesFromBeforeStillDecode) {
  EXPECT_EQ(DecodePairState(Unhex("02000000")), PairState{});
  EXPECT_EQ(absl::BytesToHexString(EncodePairState(PairState{})), "02000000");

  PairState permanent;
  permanent.base.permission = {PermissionStatus::kPermanent, std::nullopt};
  permanent.requests["req-1"] = kT0;
  constexpr std::string_view kPermanentHex = "020201287265712d3180a0abfef96200";
  EXPECT_EQ(DecodePairState(Unhex(kPermanentHex)), permanent);
  EXPECT_EQ(absl::BytesToHexString(EncodePairState(permanent)), kPermanentHex);
}

struct GoldenEvent {
  Event event;
  std::string_view key_hex;
  std::string_view details_hex;
};

// Each kind of event, with every flag of its details set and with none.
std::vector<GoldenEvent> GoldenEvents() {
  const std::string uuid(kGoldenUuid);
  return {
      {PermissionRequested{.request_id = uuid, .at = kT0}, "015a61b97b2c3d4e5f8a9b0c1d2e3f4a5b",
       ""},
      {PermissionReplied{.message_id = "wamid.AAAA",
                         .at = kT0,
                         .accepted = true,
                         .permanent = true,
                         .expires_at = kT0 + kDays7,
                         .source = ReplySource::kAutomatic},
       "0a000000", "0f8090e4c004"},
      {PermissionReplied{.message_id = "wamid.AA==", .at = kT0}, "0b00", "00"},
      {CallConnected{.call_id = "wacid.AAAA",
                     .at = kT0,
                     .direction = CallDirection::kUserInitiated,
                     .authorization_id = "auth-1"},
       "14000000", "0930617574682d31"},
      {CallConnected{.call_id = "wacid.AAA=", .at = kT0}, "150000", "00"},
      {CallTerminated{.call_id = "x",
                      .at = kT0 + Millis(30),
                      .direction = CallDirection::kUserInitiated,
                      .picked_up = true,
                      .started_at = kT0 - Millis(1),
                      .authorization_id = uuid},
       "1878", "0f3d015a61b97b2c3d4e5f8a9b0c1d2e3f4a5b"},
      {CallTerminated{.call_id = "wacid.AAAA", .at = kT0}, "1c000000", "00"},
      {CallRejected{.call_id = "wacid.AAAA", .at = kT0, .authorization_id = "auth-2"}, "24000000",
       "0830617574682d32"},
      {CallRejected{.call_id = "wacid.AAAA", .at = kT0}, "24000000", "00"},
      {CallbackGranted{.call_id = "wacid.AAAA", .at = kT0}, "2c000000", ""},
      {CallAuthorized{
           .authorization_id = uuid, .at = kT0, .expires_at = kT0 + std::chrono::minutes(5)},
       "315a61b97b2c3d4e5f8a9b0c1d2e3f4a5b", "c0cf24"},
      // Storage layout 5.
      {Finalized({NoticeKind::kAutoRevoked, kT0, "wacid.AAAA"}),
       "386175746f5f7265766f6b656440313730303030303030303030302f77616369642e41414141",
       "011c000000"},
      {Finalized({NoticeKind::kExpired, kT0, ""}), "386578706972656440313730303030303030303030302f",
       "0200"},
      // Storage layout 7.
      {UserIdChanged{.user_id = "US.2", .at = kT0, .previous = "US.1"}, "4055532e32", "2055532e31"},
  };
}

TEST(CodecFormatTest, EventBytesFromBeforeStillDecode) {
  std::vector<bool> kinds_seen(std::variant_size_v<Event>);
  for (const GoldenEvent& golden : GoldenEvents()) {
    SCOPED_TRACE(EventKey(golden.event));
    kinds_seen[golden.event.index()] = true;
    const auto decoded =
        DecodeEvent(Unhex(golden.key_hex), EventTime(golden.event), Unhex(golden.details_hex));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_TRUE(SameEvent(*decoded, golden.event));
    EXPECT_EQ(absl::BytesToHexString(EncodeEventKey(golden.event)), golden.key_hex);
    EXPECT_EQ(absl::BytesToHexString(EncodeEventDetails(golden.event)), golden.details_hex);
  }
  for (std::size_t i = 0; i < kinds_seen.size(); ++i) {
    EXPECT_TRUE(kinds_seen[i]) << "no golden bytes for event kind " << i;
  }
}

// A flags byte with a bit this version does not know is corrupt (or from a newer writer): it must
// not decode as if the bit were clear.
TEST(CodecFormatTest, UnknownReplyFlagBitsDoNotDecode) {
  PairState state;
  state.replies["wamid-1"] = {kT0, false, false, std::nullopt, ReplySource::kUserAction};
  const std::string clear = EncodePairState(state);
  state.replies["wamid-1"].accepted = true;
  const std::string accepted = EncodePairState(state);
  ASSERT_EQ(clear.size(), accepted.size());
  const auto at = std::mismatch(clear.begin(), clear.end(), accepted.begin()).first - clear.begin();
  ASSERT_LT(static_cast<std::size_t>(at), clear.size());  // the reply's flags byte
  for (const char bit : {'\x10', '\x20', '\x40', '\x80'}) {
    std::string bytes = accepted;
    bytes[at] = static_cast<char>(bytes[at] | bit);
    EXPECT_FALSE(DecodePairState(bytes).has_value()) << "bit " << static_cast<int>(bit & 0xff);
  }

  const Event reply = PermissionReplied{.message_id = "wamid-1", .at = kT0, .accepted = true};
  const Event call = CallConnected{.call_id = "wacid-1", .at = kT0};
  for (const Event& event : {reply, call}) {
    std::string details = EncodeEventDetails(event);
    ASSERT_EQ(details.size(), 1u);  // the flags byte alone
    details[0] = static_cast<char>(details[0] | 0x10);
    EXPECT_FALSE(DecodeEvent(EncodeEventKey(event), kT0, details).has_value()) << EventKey(event);
  }
}

// Every value codec_format.h names is on disk: each is pinned here as a literal, so renumbering
// one (or reordering the types it once mirrored) fails a test instead of misreading stores.
TEST(CodecFormatTest, FormatVersionIsPinned) { EXPECT_EQ(codec::kFormatVersion, 2); }

TEST(CodecFormatTest, EventTagsArePinned) {
  using codec::EventTag;
  EXPECT_EQ(static_cast<int>(EventTag::kPermissionRequested), 0);
  EXPECT_EQ(static_cast<int>(EventTag::kPermissionReplied), 1);
  EXPECT_EQ(static_cast<int>(EventTag::kCallConnected), 2);
  EXPECT_EQ(static_cast<int>(EventTag::kCallTerminated), 3);
  EXPECT_EQ(static_cast<int>(EventTag::kCallRejected), 4);
  EXPECT_EQ(static_cast<int>(EventTag::kCallbackGranted), 5);
  EXPECT_EQ(static_cast<int>(EventTag::kCallAuthorized), 6);
  EXPECT_EQ(static_cast<int>(EventTag::kNoticeFinalized), 7);
  EXPECT_EQ(static_cast<int>(EventTag::kUserIdChanged), 8);
  EXPECT_EQ(codec::kLastEventTag, EventTag::kUserIdChanged);
}

TEST(CodecFormatTest, NoticeKindsArePinned) {
  EXPECT_EQ(codec::PackNoticeKind(NoticeKind::kReconsiderShown), 0);
  EXPECT_EQ(codec::PackNoticeKind(NoticeKind::kAutoRevoked), 1);
  EXPECT_EQ(codec::PackNoticeKind(NoticeKind::kExpired), 2);
  for (int byte = 0; byte < 256; ++byte) {
    const auto kind = codec::UnpackNoticeKind(static_cast<std::uint8_t>(byte));
    EXPECT_EQ(kind.has_value(), byte <= 2) << byte;
    if (kind) {
      EXPECT_EQ(codec::PackNoticeKind(*kind), byte);
    }
  }
}

TEST(CodecFormatTest, EveryKindOfEventHasItsTag) {
  using codec::EventTag;
  using codec::EventTagOf;
  EXPECT_EQ(EventTagOf(PermissionRequested{}), EventTag::kPermissionRequested);
  EXPECT_EQ(EventTagOf(PermissionReplied{}), EventTag::kPermissionReplied);
  EXPECT_EQ(EventTagOf(CallConnected{}), EventTag::kCallConnected);
  EXPECT_EQ(EventTagOf(CallTerminated{}), EventTag::kCallTerminated);
  EXPECT_EQ(EventTagOf(CallRejected{}), EventTag::kCallRejected);
  EXPECT_EQ(EventTagOf(CallbackGranted{}), EventTag::kCallbackGranted);
  EXPECT_EQ(EventTagOf(CallAuthorized{}), EventTag::kCallAuthorized);
  // The tag is what the key's first byte carries above the id's form.
  for (const Event& event : EveryEvent()) {
    const std::string key = EncodeEventKey(event);
    ASSERT_FALSE(key.empty());
    EXPECT_EQ(static_cast<unsigned char>(key[0]) >> 3, static_cast<int>(EventTagOf(event)))
        << EventKey(event);
  }
}

TEST(CodecFormatTest, IdFormsArePinned) {
  using codec::IdForm;
  EXPECT_EQ(static_cast<int>(IdForm::kRaw), 0);
  EXPECT_EQ(static_cast<int>(IdForm::kUuid), 1);
  EXPECT_EQ(static_cast<int>(IdForm::kWamid), 2);
  EXPECT_EQ(static_cast<int>(IdForm::kWamidPadded), 3);
  EXPECT_EQ(static_cast<int>(IdForm::kWacid), 4);
  EXPECT_EQ(static_cast<int>(IdForm::kWacidPadded), 5);
  EXPECT_EQ(codec::kLastIdForm, IdForm::kWacidPadded);
  EXPECT_EQ(codec::kIdFormBits, 3);
  EXPECT_EQ(codec::kIdFormMask, 0x07);
  EXPECT_EQ((codec::IdHeader{.size = 5, .form = 2}.Pack()), 0x2au);
  EXPECT_EQ((codec::KeyHead{.tag = 6, .form = 1}.Pack()), 0x31);
}

TEST(CodecFormatTest, FlagBitsArePinned) {
  EXPECT_EQ(codec::kStateStatusMask, 0x0f);
  EXPECT_EQ(codec::kStateHasExpiry, 0x10);
  EXPECT_EQ(codec::kStateHasHorizon, 0x20);
  EXPECT_EQ(codec::kStateHasUnanswered, 0x40);
  EXPECT_EQ(codec::kStateHasMore, 0x80);
  EXPECT_EQ(codec::kStatusNotGranted, 0);
  EXPECT_EQ(codec::kStatusTemporary, 1);
  EXPECT_EQ(codec::kStatusPermanent, 2);

  EXPECT_EQ(codec::kReplyAccepted, 0x01);
  EXPECT_EQ(codec::kReplyPermanent, 0x02);
  EXPECT_EQ(codec::kReplyHasExpiry, 0x04);
  EXPECT_EQ(codec::kReplyAutomatic, 0x08);
  EXPECT_EQ(codec::kReplyKnownBits, 0x0f);

  EXPECT_EQ(codec::kCallEventUserInitiated, 0x01);
  EXPECT_EQ(codec::kCallEventPickedUp, 0x02);
  EXPECT_EQ(codec::kCallEventHasStart, 0x04);
  EXPECT_EQ(codec::kCallEventHasAuthorization, 0x08);
  EXPECT_EQ(codec::kCallEventKnownBits, 0x0f);

  EXPECT_EQ(codec::kCallUserInitiated, 0x01);
  EXPECT_EQ(codec::kCallPickedUp, 0x02);
  EXPECT_EQ(codec::kCallHasConnected, 0x04);
  EXPECT_EQ(codec::kCallHasStarted, 0x08);
  EXPECT_EQ(codec::kCallHasTerminated, 0x10);
  EXPECT_EQ(codec::kCallHasRejected, 0x20);
  EXPECT_EQ(codec::kCallHasCallback, 0x40);
  EXPECT_EQ(codec::kCallHasAuthorization, 0x80);
}

// Each flags byte's Pack and Unpack agree on every byte: what unpacks packs back to itself.
TEST(CodecFormatTest, FlagsBytesUnpackAndPackBack) {
  int states = 0, replies = 0, call_events = 0;
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<std::uint8_t>(b);
    if (const auto flags = codec::StateFlags::Unpack(byte)) {
      EXPECT_EQ(flags->Pack(), byte);
      ++states;
    }
    if (const auto flags = codec::ReplyFlags::Unpack(byte)) {
      EXPECT_EQ(flags->Pack(), byte);
      ++replies;
    }
    if (const auto flags = codec::CallEventFlags::Unpack(byte)) {
      EXPECT_EQ(flags->Pack(), byte);
      ++call_events;
    }
    EXPECT_EQ(codec::CallFlags::Unpack(byte).Pack(), byte);
  }
  EXPECT_EQ(states, 3 * 16);  // three statuses, four flags
  EXPECT_EQ(replies, 16);     // four flags; a byte with any other bit is refused
  EXPECT_EQ(call_events, 16);
  EXPECT_EQ((codec::StateFlags{.status = PermissionStatus::kPermanent, .has_horizon = true}.Pack()),
            0x22);
}

}  // namespace
}  // namespace callgate

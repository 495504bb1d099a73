// codec_fuzz: the storage codec's decoders (src/store/codec.h) on arbitrary bytes. The first byte
// picks one: DecodePairState; DecodeEvent (then a key length byte, the key, 8 bytes of time in
// milliseconds, little-endian, and the details); UnpackId.
// Asserts: whatever decodes re-encodes to bytes that decode to the same value, and re-encoding
// that is stable; every id packs and unpacks to itself (ids are packed losslessly).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_check.h"
#include "store/codec.h"

namespace callgate {
namespace {

using fuzz::Check;

void PairStateRoundTrip(std::string_view bytes) {
  const auto state = DecodePairState(bytes);
  if (!state) return;
  const std::string encoded = EncodePairState(*state);
  const auto again = DecodePairState(encoded);
  Check(again && *again == *state, "a decoded state does not survive encode/decode");
  Check(EncodePairState(*again) == encoded, "a state's encoding is not stable");
}

void EventRoundTrip(std::string_view bytes) {
  if (bytes.empty()) return;
  const std::size_t key_size =
      std::min<std::size_t>(static_cast<std::uint8_t>(bytes[0]), bytes.size() - 1);
  const std::string_view key = bytes.substr(1, key_size);
  bytes.remove_prefix(1 + key_size);
  std::uint64_t millis = 0;
  for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    millis |= std::uint64_t{static_cast<std::uint8_t>(bytes[i])} << (8 * i);
  }
  bytes.remove_prefix(std::min<std::size_t>(8, bytes.size()));
  const Instant at = FromUnixMillis(static_cast<std::int64_t>(millis));
  const std::string_view details = bytes;
  const auto event = DecodeEvent(key, at, details);
  if (!event) return;
  Check(EventTime(*event) == at, "a decoded event lost its time");
  const std::string key2 = EncodeEventKey(*event);
  const std::string details2 = EncodeEventDetails(*event);
  const auto again = DecodeEvent(key2, at, details2);
  Check(again.has_value(), "a decoded event's encoding does not decode");
  Check(EventKey(*again) == EventKey(*event) && EventId(*again) == EventId(*event) &&
            EventKind(*again) == EventKind(*event) && EventTime(*again) == at,
        "a decoded event does not survive encode/decode");
  Check(EncodeEventKey(*again) == key2 && EncodeEventDetails(*again) == details2,
        "an event's encoding is not stable");
}

void IdRoundTrip(std::string_view bytes) {
  const auto packed_as_is = UnpackId(PackId(bytes));
  Check(packed_as_is && *packed_as_is == bytes, "an id does not pack and unpack to itself");
  const auto id = UnpackId(bytes);
  if (!id) return;
  const auto again = UnpackId(PackId(*id));
  Check(again && *again == *id, "an unpacked id does not pack and unpack to itself");
}

}  // namespace
}  // namespace callgate

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callgate;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      PairStateRoundTrip(rest);
      break;
    case 1:
      EventRoundTrip(rest);
      break;
    case 2:
      IdRoundTrip(rest);
      break;
  }
  return 0;
}

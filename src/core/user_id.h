// Who a pair's user is, and the key of a pair: values, no I/O. A user is known to a business by
// an E.164 phone number today; a business-scoped user id (BSUID) is the next kind (issue 10),
// which is why the key is a typed value rather than a bare string. Thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace callgate {

enum class UserIdKind : std::uint8_t {
  kPhone,  // E.164: "+" and digits, already validated (see pairs/destination.h)
};

class UserId {
 public:
  // `e164` must already be in canonical E.164 form.
  static UserId Phone(std::string e164) { return UserId(UserIdKind::kPhone, std::move(e164)); }

  UserIdKind kind() const { return kind_; }
  // The canonical text: what the API shows and what stores key the pair by. Texts of different
  // kinds never collide (a phone number starts with '+').
  const std::string& text() const { return text_; }

  friend bool operator==(const UserId&, const UserId&) = default;
  friend auto operator<=>(const UserId&, const UserId&) = default;

 private:
  UserId(UserIdKind kind, std::string text) : kind_(kind), text_(std::move(text)) {}

  UserIdKind kind_;
  std::string text_;
};

// One ledger: a business channel and one of its users.
struct PairKey {
  std::string channel_id;
  UserId user;

  friend bool operator==(const PairKey&, const PairKey&) = default;
  friend auto operator<=>(const PairKey&, const PairKey&) = default;
};

}  // namespace callgate

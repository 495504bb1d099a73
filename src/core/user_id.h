// Who a pair's user is, and the key of a pair: values, no I/O. A user is known to a business by
// an E.164 phone number, by a business-scoped user id (BSUID, docs/rules.md §7), or both: a
// UserId is one of those ids. Thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace callgate {

enum class UserIdKind : std::uint8_t {
  kPhone,  // E.164: "+" and digits, already validated (see pairs/destination.h)
  kBsuid,  // "US.13491208655302741918", or a parent BSUID "US.ENT.…" (see ParseBsuid)
};

class UserId {
 public:
  // `e164` must already be in canonical E.164 form.
  static UserId Phone(std::string e164) { return UserId(UserIdKind::kPhone, std::move(e164)); }
  // `bsuid` must already be well-formed (ParseBsuid).
  static UserId Bsuid(std::string bsuid) { return UserId(UserIdKind::kBsuid, std::move(bsuid)); }
  // The user a stored text names: a phone number starts with '+', a BSUID never does.
  static UserId FromText(std::string text) {
    return text.starts_with('+') ? Phone(std::move(text)) : Bsuid(std::move(text));
  }

  UserIdKind kind() const { return kind_; }
  // The canonical text: what the API shows and what stores key the pair by. Texts of different
  // kinds never collide (a phone number starts with '+', a BSUID with a letter).
  const std::string& text() const { return text_; }

  friend bool operator==(const UserId&, const UserId&) = default;
  friend auto operator<=>(const UserId&, const UserId&) = default;

 private:
  UserId(UserIdKind kind, std::string text) : kind_(kind), text_(std::move(text)) {}

  UserIdKind kind_;
  std::string text_;
};

// A BSUID, if `text` is one: two upper-case letters (the user's country), '.', "ENT." for a
// parent BSUID, then 1 to 128 ASCII letters and digits.
inline bool IsBsuid(std::string_view text) {
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto alnum = [&](char c) { return upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (text.size() < 4 || !upper(text[0]) || !upper(text[1]) || text[2] != '.') return false;
  std::string_view rest = text.substr(3);
  if (rest.starts_with("ENT.")) rest.remove_prefix(4);
  if (rest.empty() || rest.size() > 128) return false;
  for (const char c : rest) {
    if (!alnum(c)) return false;
  }
  return true;
}

// One ledger: a business channel and one of its users.
struct PairKey {
  std::string channel_id;
  UserId user;

  friend bool operator==(const PairKey&, const PairKey&) = default;
  friend auto operator<=>(const PairKey&, const PairKey&) = default;
};

}  // namespace callgate

// Routes parsed webhook items to pairs: phone_number_id -> channel, the user's ids -> the id its
// pair is keyed by (the E.164 number when valid, else the BSUID, else the parent BSUID), and
// applies the callback rule — a user-initiated call on a channel with callback
// permission enabled also grants a temporary permission from the call's time (docs/rules.md §2).
// Pure over a tenant snapshot; thread-safe.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "core/user_id.h"
#include "ingest/meta_webhook.h"
#include "tenants/tenants.h"

namespace callgate {

struct PairEvents {
  LimitsProfile limits = LimitsProfile::kProduction;
  std::vector<Event> events;
};

// Ids of one user on a channel, to link (two or more, each valid), in a canonical order.
struct LinkedIds {
  std::string channel_id;
  std::vector<UserId> ids;

  friend auto operator<=>(const LinkedIds&, const LinkedIds&) = default;
  friend bool operator==(const LinkedIds&, const LinkedIds&) = default;
};

struct RoutedWebhook {
  std::map<PairKey, PairEvents> pairs;
  std::set<LinkedIds> links;  // each once
  int unknown_channel = 0;    // items for a phone_number_id no channel has
  int invalid_user = 0;       // items naming their user by no valid id (number or BSUID)
};

// The callback grant a user-initiated call event implies: from the call's start.
Event CallbackGrantFor(const Event& call_event);

// `normalize` turns "+digits" into the user it names, or nullopt if invalid.
template <class Normalize>
RoutedWebhook RouteWebhook(const ParsedWebhook& parsed, const TenantSnapshot& tenants,
                           Normalize&& normalize) {
  RoutedWebhook routed;
  for (const WebhookItem& item : parsed.items) {
    const Channel* channel = tenants.FindChannelByPhoneNumberId(item.phone_number_id);
    if (!channel) {
      ++routed.unknown_channel;
      continue;
    }
    std::optional<UserId> user;
    if (!item.user.phone_digits.empty()) user = normalize("+" + item.user.phone_digits);
    for (const std::string* bsuid : {&item.user.bsuid, &item.user.parent_bsuid}) {
      if (!user && IsBsuid(*bsuid)) user = UserId::Bsuid(*bsuid);
    }
    if (!user) {
      ++routed.invalid_user;
      continue;
    }
    PairEvents& pair = routed.pairs[PairKey{channel->id, std::move(*user)}];
    pair.limits = channel->limits;
    pair.events.push_back(item.event);
    if (item.user_initiated_call && channel->callback_permission_enabled) {
      pair.events.push_back(CallbackGrantFor(item.event));
    }
  }
  for (const UserIdsSeen& seen : parsed.links) {
    const Channel* channel = tenants.FindChannelByPhoneNumberId(seen.phone_number_id);
    if (!channel) continue;  // its items, if any, were counted
    LinkedIds link{channel->id, {}};
    if (!seen.user.phone_digits.empty()) {
      if (std::optional<UserId> phone = normalize("+" + seen.user.phone_digits)) {
        link.ids.push_back(std::move(*phone));
      }
    }
    for (const std::string* bsuid : {&seen.user.bsuid, &seen.user.parent_bsuid,
                                     &seen.previous_bsuid, &seen.previous_parent_bsuid}) {
      if (IsBsuid(*bsuid)) link.ids.push_back(UserId::Bsuid(*bsuid));
    }
    std::sort(link.ids.begin(), link.ids.end());
    link.ids.erase(std::unique(link.ids.begin(), link.ids.end()), link.ids.end());
    if (link.ids.size() < 2) continue;
    // A rotation is recorded in the user's history, on the pair its new BSUID names.
    if (IsBsuid(seen.previous_bsuid) && IsBsuid(seen.user.bsuid)) {
      PairEvents& pair = routed.pairs[PairKey{channel->id, UserId::Bsuid(seen.user.bsuid)}];
      pair.limits = channel->limits;
      pair.events.push_back(UserIdChanged{seen.user.bsuid, seen.at, seen.previous_bsuid});
    }
    routed.links.insert(std::move(link));
  }
  return routed;
}

}  // namespace callgate

// The JSON body of one notification POST (issue 13): eventId, type, occurredAt, subAccountId,
// channelId, the user (destination or channelUserId, as the pair is keyed), what the type adds
// (grant, reason, limit) and `status`, the pair's status body as the status GET answers at
// occurredAt (api/api.h StatusBody: the same encoder). Pure; thread-safe.
#pragma once

#include <string>

#include "core/ledger.h"
#include "store/outbox.h"

namespace callgate {

// `view`: the pair's View at the notification's occurredAt.
std::string RenderNotification(const OutboxItem& item, const std::string& subaccount_id,
                               const StatusView& view);

}  // namespace callgate

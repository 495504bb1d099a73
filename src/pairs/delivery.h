// Apply a webhook delivery: a parsed upstream (Meta) delivery's channel-setting changes go to the
// tenant store, its call-permission items are routed to pairs (ingest/route.h) and applied, each
// pair in one atomic write. Counts what was applied, what was already known, and what was not
// applied and why. Thread-safe.
#pragma once

#include <array>
#include <functional>

#include "ingest/meta_webhook.h"
#include "store/pair_store.h"
#include "tenants/directory.h"
#include "tenants/tenant_store.h"

namespace callgate {

// What one delivery did (never a phone number).
struct DeliveryTally {
  int applied = 0;    // events that changed a pair
  int duplicate = 0;  // events already known
  int too_late = 0;   // events behind the reorder horizon
  // Entries, changes or items that say nothing about call permissions, by reason (Ignored():
  // their sum).
  std::array<int, kIgnoreReasonCount> ignored_by{};
  int unknown_channel = 0;  // items for a phone_number_id no channel has
  int invalid_user = 0;     // items naming their user by no valid id (number or BSUID)
  int invalid_time = 0;     // items with a timestamp out of range
  int settings = 0;         // channel settings changed
  int linked = 0;           // sets of ids of one user linked (docs/rules.md §7)
  int rotations = 0;        // BSUID rotations among them

  // Something arrived that was not applied (worth a log line).
  bool Skipped() const {
    return Ignored() || unknown_channel || invalid_user || invalid_time || too_late;
  }
  int Ignored() const {
    int sum = 0;
    for (const int count : ignored_by) sum += count;
    return sum;
  }
};

struct DeliveryStores {
  PairStore& pairs;
  TenantStore& tenant_store;
  TenantDirectory& tenants;
};

// `done` runs once every pair write is durable (or one failed: then with its error, and the
// delivery is to be retried upstream — safe, as applying an event twice changes nothing); on a
// store thread or inline.
void ApplyDelivery(const DeliveryStores& stores, ParsedWebhook delivery,
                   std::function<void(StoreResult<DeliveryTally>)> done);

}  // namespace callgate

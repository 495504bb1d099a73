// The Notifier a store calls inside each pair commit (store/outbox.h): notifications only for
// pairs whose account has a notification target, derived by core's DeriveNotifications with the
// channel's limits profile at the clock's `now`. Thread-safe (it reads the tenant directory).
#pragma once

#include "api/api.h"
#include "store/outbox.h"
#include "tenants/directory.h"

namespace callgate {

// `tenants` must outlive the notifier (the store holds it until SetNotifier replaces it).
Notifier MakeNotifier(TenantDirectory& tenants, Clock clock);

}  // namespace callgate

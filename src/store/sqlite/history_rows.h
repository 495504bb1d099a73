// Reading history rows (seq, event_key, at, source, event) into HistoryEntries: shared by the
// history reads (sqlite_store.cc) and the merge of a link (group_commit.cc).
#pragma once

#include <vector>

#include "store/pair_store.h"
#include "store/sqlite/sqlite_db.h"

namespace callgate {

// Appends the rows of a history query (seq, event_key, at, source, event) to `out`.
StoreStatus ReadHistoryRows(Stmt& s, std::vector<HistoryEntry>& out);

}  // namespace callgate

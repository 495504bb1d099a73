// callgate_bench_seed: fills a data directory with pairs for the benchmarks, fast, through the
// store's own write path (SqliteStore::UpdatePair, group-committed) rather than over HTTP; and
// counts pairs afterwards, for the durability check of the write benchmark.
//
//   callgate_bench_seed seed --db FILE --channel ID --pairs N --targets-out FILE
//       --path-prefix '/api/…/callPermissions?destination=' [--targets-max M] [--rng-seed S]
//       [--fixed +E164]
//     Writes N pairs with random, distinct, libphonenumber-possible destinations (+65 8/9…,
//     +1 NPA-NXX-XXXX with NPA 2xx–8xx), each with the facts a real pair carries: a permission
//     request and, for most, a reply (temporary accept / permanent accept / reject), with their
//     history entries. `--fixed` adds one pair with a temporary grant that stays stable for
//     days (the body the status benchmark compares with nginx). Writes M request paths to
//     --targets-out: distinct random pairs, repeated at random when there are fewer than M. Prints
//     one JSON object: pairs, seconds, bytes on disk (database + WAL after a TRUNCATE checkpoint)
//     and bytes per pair.
//   callgate_bench_seed count --db FILE --prefix +19
//     Prints the number of pairs whose destination starts with the prefix.
//
// Single-threaded driver; the store's writer thread runs the mutations.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "api/destination.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {
namespace {

using Args = std::map<std::string, std::string>;

// "--name value" pairs after the mode word.
bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 2; i < argc; i += 2) {
    const std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc) return false;
    args[name.substr(2)] = argv[i + 1];
  }
  return true;
}

std::string Get(const Args& args, const std::string& name, const std::string& fallback = "") {
  const auto it = args.find(name);
  return it == args.end() ? fallback : it->second;
}

Instant Now() { return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now()); }

// Upstream-looking ids of realistic length: request ids are UUIDs, wamids ~60 characters.
std::string RandomId(std::mt19937_64& rng, std::size_t length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id(length, 'x');
  for (char& c : id) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

std::string Uuid(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx";
  for (char& c : id) {
    if (c == 'x') c = kHex[rng() % 16];
  }
  return id;
}

std::string RandomDestination(std::mt19937_64& rng) {
  auto digits = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + rng() % 10));
    return s;
  };
  if (rng() % 2 == 0) return "+65" + std::to_string(8 + rng() % 2) + digits(7);
  // NANP: NPA 200–899 (9xx is left for the write benchmark), NXX 200–999.
  return "+1" + std::to_string(2 + rng() % 7) + digits(2) + std::to_string(2 + rng() % 8) +
         digits(6);
}

// As the API and the webhook ingest do.
void Record(PairState& state, std::vector<HistoryEntry>& history, const Event& event,
            EventSource source) {
  (void)ApplyAndRecord(state, history, event, source, LimitsProfile::kProduction);
}

// The facts of one pair: a permission request (the API would have answered 201) and, for most,
// the user's reply.
PairMutation PairFacts(std::mt19937_64& rng, Instant now) {
  const Instant requested = now - Millis(rng() % (6 * 24 * 3600 * 1000LL));
  const std::string request_id = Uuid(rng);
  // 0–5: temporary accept, 6: permanent accept, 7: reject, 8–9: no reply yet.
  const int outcome = static_cast<int>(rng() % 10);
  PermissionReplied reply;
  reply.message_id = "wamid." + RandomId(rng, 56);
  reply.at = requested + Millis(rng() % (3600 * 1000LL));
  reply.accepted = outcome <= 6;
  reply.permanent = outcome == 6;
  if (outcome <= 5) reply.expires_at = reply.at + kDays7;
  return [=](PairState& state, std::vector<HistoryEntry>& history) {
    Record(state, history, PermissionRequested{request_id, requested}, EventSource::kApi);
    if (outcome <= 7) Record(state, history, reply, EventSource::kWebhook);
    return true;
  };
}

// A temporary grant whose expiry is days away: the status body stays the same for the run.
PairMutation StableGrant(Instant now) {
  PermissionReplied grant;
  grant.message_id = "wamid.bench-fixed";
  grant.at = now - std::chrono::hours(25);  // outside the 24 h request window
  grant.accepted = true;
  grant.expires_at = grant.at + kDays7;
  return [grant](PairState& state, std::vector<HistoryEntry>& history) {
    Record(state, history, grant, EventSource::kWebhook);
    return true;
  };
}

// Bounds the updates in flight so a million queued closures do not pile up in memory.
class Window {
 public:
  explicit Window(int limit) : limit_(limit) {}
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < limit_; });
    ++in_flight_;
  }
  void Release(bool ok) {
    std::lock_guard lock(mu_);
    --in_flight_;
    if (!ok) ++failed_;
    cv_.notify_all();
  }
  int Drain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    return failed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int limit_;
  int in_flight_ = 0;
  int failed_ = 0;
};

std::uintmax_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

int Seed(const Args& args) {
  const std::string db_path = Get(args, "db");
  const std::string channel = Get(args, "channel");
  const long pairs = std::stol(Get(args, "pairs", "1000"));
  const long targets_max = std::stol(Get(args, "targets-max", "100000"));
  const std::string targets_out = Get(args, "targets-out");
  const std::string prefix = Get(args, "path-prefix");
  const std::string fixed = Get(args, "fixed");
  if (db_path.empty() || channel.empty() || targets_out.empty() || prefix.empty()) {
    std::cerr << "seed: --db, --channel, --targets-out and --path-prefix are required\n";
    return 2;
  }
  std::mt19937_64 rng(std::stoull(Get(args, "rng-seed", "20260101")));
  const auto started = std::chrono::steady_clock::now();
  const Instant now = Now();

  // Distinct destinations, each one the API accepts as it is (no normalisation needed).
  std::vector<std::string> destinations;
  destinations.reserve(static_cast<std::size_t>(pairs));
  {
    std::unordered_set<std::string> seen;
    seen.reserve(static_cast<std::size_t>(pairs) * 2);
    if (!fixed.empty()) seen.insert(fixed);
    while (static_cast<long>(destinations.size()) < pairs) {
      std::string d = RandomDestination(rng);
      if (seen.count(d)) continue;
      const auto normalized = NormalizeDestination(d);
      if (!normalized || *normalized != d) continue;
      seen.insert(d);
      destinations.push_back(std::move(d));
    }
  }

  // Key order: each group commit then touches a few neighbouring B-tree pages instead of one
  // page per pair, which makes seeding a million pairs take seconds rather than minutes. The
  // pages end up fuller than random-order growth leaves them (as after a VACUUM).
  std::vector<std::string> in_key_order = destinations;
  std::sort(in_key_order.begin(), in_key_order.end());

  auto opened = SqliteStore::Open({.path = db_path, .max_batch = 8192});
  if (!opened) {
    std::cerr << "seed: " << opened.error() << "\n";
    return 1;
  }
  std::unique_ptr<SqliteStore> store = std::move(*opened);
  Window window(65536);
  auto submit = [&](const std::string& destination, PairMutation mutation) {
    window.Acquire();
    store->UpdatePair({channel, destination}, std::move(mutation),
                      [&window](StoreStatus status) { window.Release(status.ok()); });
  };
  if (!fixed.empty()) submit(fixed, StableGrant(now));
  for (const std::string& d : in_key_order) submit(d, PairFacts(rng, now));
  const int failed = window.Drain();
  store.reset();
  if (failed) {
    std::cerr << "seed: " << failed << " pair writes failed\n";
    return 1;
  }

  // Bytes on disk once the WAL is folded back into the database.
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::cerr << "seed: checkpoint failed: " << sqlite3_errmsg(db) << "\n";
    sqlite3_close(db);
    return 1;
  }
  // Bytes per table and index, where SQLite has the dbstat table (Debian's has).
  std::string tables;
  sqlite3_stmt* stat = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC",
                         -1, &stat, nullptr) == SQLITE_OK) {
    while (sqlite3_step(stat) == SQLITE_ROW) {
      tables += std::string(tables.empty() ? "" : ",") + "\"" +
                reinterpret_cast<const char*>(sqlite3_column_text(stat, 0)) +
                "\":" + std::to_string(sqlite3_column_int64(stat, 1));
    }
  }
  sqlite3_finalize(stat);
  sqlite3_close(db);
  const auto db_bytes = FileSize(db_path);
  const auto wal_bytes = FileSize(db_path + "-wal");

  std::ofstream targets(targets_out);
  std::vector<std::size_t> order(destinations.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  // Exactly targets_max lines: distinct pairs while they last, then random repeats, so that lists
  // for stores of different sizes cost the load generator the same (a Lua table of equal size).
  order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(targets_max)));
  while (!destinations.empty() && order.size() < static_cast<std::size_t>(targets_max)) {
    order.push_back(rng() % destinations.size());
  }
  for (const std::size_t i : order) targets << prefix << "%2B" << destinations[i].substr(1) << "\n";

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const long total = pairs + (fixed.empty() ? 0 : 1);
  std::printf(
      "{\"pairs\":%ld,\"seconds\":%.2f,\"db_bytes\":%ju,\"wal_bytes\":%ju,"
      "\"bytes_per_pair\":%.1f,\"bytes_by_table\":{%s}}\n",
      total, seconds, db_bytes, wal_bytes,
      static_cast<double>(db_bytes + wal_bytes) / static_cast<double>(total), tables.c_str());
  return 0;
}

int Count(const Args& args) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  const std::string prefix = Get(args, "prefix");
  // Destinations are "+" and digits: a range scan on the primary key counts a prefix.
  if (sqlite3_open_v2(Get(args, "db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM pairs WHERE destination >= ?1 AND destination < ?2",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    std::cerr << "count: " << sqlite3_errmsg(db) << "\n";
    sqlite3_close(db);
    return 1;
  }
  const std::string upper = prefix + ":";  // ':' sorts right after '9'
  sqlite3_bind_text(stmt, 1, prefix.data(), static_cast<int>(prefix.size()), SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, upper.data(), static_cast<int>(upper.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) std::printf("%lld\n", sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rc == SQLITE_ROW ? 0 : 1;
}

}  // namespace
}  // namespace callgate

int main(int argc, char** argv) {
  callgate::Args args;
  const std::string mode = argc > 1 ? argv[1] : "";
  if ((mode != "seed" && mode != "count") || !callgate::ParseArgs(argc, argv, args)) {
    std::cerr << "usage: callgate_bench_seed seed|count --name value ...\n";
    return 2;
  }
  return mode == "seed" ? callgate::Seed(args) : callgate::Count(args);
}

// callgate_bench_busy: does a pair's past cost its present? Measures, in one process on a real
// SqliteStore (fsync on), the status read and the call authorisation of a pair that has had
// `--authorisations` call authorisations (each with an Idempotency-Key, spread over the last days
// as a busy contact-centre line would) against those of a fresh pair with the same permission
// (for reads: one that has had one authorisation; also reported: one that never had any),
// alternating the two every round; and a fresh pair's authorisations while another thread keeps
// authorising on the busy pair, against the same while that thread authorises on another fresh
// pair (does a busy pair slow everyone sharing the writer?).
//
//   callgate_bench_busy --dir DIR [--authorisations 10000] [--rounds 5] [--reads 20000]
//                       [--writes 300]
//
// Prints one JSON object: per measurement the median over rounds of the mean time per operation
// (µs) of each contender, the ratio busy / fresh, and the encoded state sizes. Ratios are what
// to compare across machines and runs; the absolute times depend on the disk's fsync rate.
//
// The clock is simulated for the writes: authorisation i happens at a time that has let every
// earlier hold expire, so each is granted and recorded (the limits are what they are in
// production). Reads use the wall clock.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "pairs/reserve.h"
#include "store/codec.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {
namespace {

using Clock = std::chrono::steady_clock;

Instant Now() { return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now()); }

// A writer's simulated clock: each authorisation a second after the previous one, holds of 1 ms.
struct SimClock {
  Instant next;
  Instant Tick() { return next += std::chrono::seconds(1); }
};

PairRef PairOf(const std::string& destination) {
  return {PairKey{"bench-ch", UserId::Phone(destination)}, LimitsProfile::kProduction};
}

void Grant(PairStore& store, const PairRef& pair, Instant at) {
  const Event grant =
      PermissionReplied{"wamid.grant", at, true, true, std::nullopt, ReplySource::kUserAction};
  const auto status = UpdatePairSync(store, pair.key, [&](PairState& state, auto& history) {
    return ApplyAndRecord(state, history, grant, EventSource::kWebhook, pair.limits) ==
           ApplyOutcome::kApplied;
  });
  if (!status.ok()) throw std::runtime_error("grant failed");
}

// One call authorisation, waited for; throws unless it was granted and recorded.
void Authorize(PairStore& store, const PairRef& pair, Instant now, const std::string& key) {
  ReservationRequest request{pair, ReservationKind::kCall, {}, key, now, Millis(1)};
  std::promise<StoreResult<Reservation>> promise;
  auto future = promise.get_future();
  Reserve(store, std::move(request),
          [&promise](StoreResult<Reservation> result) { promise.set_value(std::move(result)); });
  const auto result = future.get();
  if (!result.ok() || result->refusal || result->replayed) {
    throw std::runtime_error("authorisation was not granted");
  }
}

double MeanMicros(Clock::duration total, int ops) {
  return std::chrono::duration<double, std::micro>(total).count() / ops;
}

double ReadMicros(PairStore& store, const PairRef& pair, int reads) {
  const Instant now = Now();
  const auto start = Clock::now();
  for (int i = 0; i < reads; ++i) {
    if (!ReadStatus(store, pair, now).ok()) throw std::runtime_error("read failed");
  }
  return MeanMicros(Clock::now() - start, reads);
}

double WriteMicros(PairStore& store, const PairRef& pair, SimClock& clock, int writes,
                   const std::string& tag, int round) {
  const auto start = Clock::now();
  for (int i = 0; i < writes; ++i) {
    Authorize(store, pair, clock.Tick(),
              tag + "-r" + std::to_string(round) + "-" + std::to_string(i));
  }
  return MeanMicros(Clock::now() - start, writes);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(const std::map<std::string, std::string>& args) {
  auto arg = [&](const std::string& name, const std::string& fallback) {
    const auto it = args.find(name);
    return it == args.end() ? fallback : it->second;
  };
  const std::filesystem::path dir = arg("dir", "");
  if (dir.empty()) {
    std::cerr << "usage: callgate_bench_busy --dir DIR [--authorisations N] [--rounds R] "
                 "[--reads N] [--writes N]\n";
    return 2;
  }
  const int authorisations = std::stoi(arg("authorisations", "10000"));
  const int rounds = std::stoi(arg("rounds", "5"));
  const int reads = std::stoi(arg("reads", "20000"));
  const int writes = std::stoi(arg("writes", "300"));

  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto opened = SqliteStore::Open({.path = (dir / "callgate.db").string()});
  if (!opened.ok()) {
    std::cerr << opened.error() << "\n";
    return 1;
  }
  SqliteStore& store = **opened;

  // The busy pair's past: `authorisations` over the last days, all holds long expired.
  const Instant seeded_from = Now() - std::chrono::hours(24 * 4);
  const Instant granted_at = seeded_from - std::chrono::hours(1);
  const PairRef busy = PairOf("+6591230000");
  const PairRef idle = PairOf("+6591230001");  // a grant and nothing else
  const PairRef once =
      PairOf("+6591239999");  // a grant and one authorisation: the reads' reference
  Grant(store, busy, granted_at);
  Grant(store, idle, granted_at);
  Grant(store, once, granted_at);
  const auto seed_start = Clock::now();
  for (int i = 0; i < authorisations; ++i) {
    Authorize(store, busy, seeded_from + std::chrono::seconds(30) * i, "seed-" + std::to_string(i));
  }
  const double seed_seconds = std::chrono::duration<double>(Clock::now() - seed_start).count();

  // Every round's writers start fresh pairs (granted, nothing else), so "fresh" stays fresh; all
  // writes continue from the end of the seeded past, a second apart.
  int next_pair = 2;
  auto new_pair = [&] {
    const PairRef pair = PairOf("+65912" + std::to_string(30000 + next_pair++));
    Grant(store, pair, granted_at);
    return pair;
  };
  const Instant writes_from = seeded_from + std::chrono::seconds(30) * authorisations;
  Authorize(store, once, writes_from, "once");
  SimClock busy_clock{writes_from};

  std::vector<double> read_idle, read_busy, read_fresh, write_busy, write_fresh, beside_busy,
      beside_fresh;
  for (int round = 0; round < rounds; ++round) {
    read_idle.push_back(ReadMicros(store, idle, reads));
    read_fresh.push_back(ReadMicros(store, once, reads));
    read_busy.push_back(ReadMicros(store, busy, reads));
    SimClock fresh_clock{writes_from};
    write_fresh.push_back(WriteMicros(store, new_pair(), fresh_clock, writes, "fresh", round));
    write_busy.push_back(WriteMicros(store, busy, busy_clock, writes, "busy", round));
    // A fresh bystander's writes while another thread writes a fresh pair, then the busy one.
    for (const bool with_busy : {false, true}) {
      const PairRef bystander = new_pair();
      const PairRef neighbour_pair = with_busy ? busy : new_pair();
      SimClock bystander_clock{writes_from}, other_clock{writes_from};
      SimClock& neighbour_clock = with_busy ? busy_clock : other_clock;
      std::atomic<bool> stop = false;
      std::thread neighbour([&] {
        for (int i = 0; !stop; ++i) {
          Authorize(store, neighbour_pair, neighbour_clock.Tick(),
                    "nb-" + std::to_string(round) + "-" + std::to_string(i));
        }
      });
      const double us = WriteMicros(store, bystander, bystander_clock, writes, "bystander", round);
      stop = true;
      neighbour.join();
      (with_busy ? beside_busy : beside_fresh).push_back(us);
    }
  }

  auto encoded = [&](const PairRef& pair) {
    const auto state = store.LoadPair(pair.key);
    return state.ok() ? EncodePairState(*state).size() : 0;
  };
  auto item = [](const char* name, const std::vector<double>& b, const std::vector<double>& f) {
    std::printf("  \"%s\": {\"busy_us\": %.2f, \"fresh_us\": %.2f, \"ratio\": %.3f},\n", name,
                Median(b), Median(f), Median(b) / Median(f));
  };
  std::printf("{\n  \"authorisations\": %d,\n  \"seed_seconds\": %.1f,\n", authorisations,
              seed_seconds);
  std::printf("  \"state_bytes\": {\"busy\": %zu, \"fresh\": %zu},\n", encoded(busy),
              encoded(once));
  item("status_read", read_busy, read_fresh);
  std::printf("  \"status_read_never_authorised_us\": %.2f,\n", Median(read_idle));
  item("call_authorisation", write_busy, write_fresh);
  item("bystander_authorisation", beside_busy, beside_fresh);
  std::printf("  \"rounds\": %d, \"reads\": %d, \"writes\": %d\n}\n", rounds, reads, writes);
  return 0;
}

}  // namespace
}  // namespace callgate

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    if (name.rfind("--", 0) != 0) {
      std::cerr << "unexpected argument: " << name << "\n";
      return 2;
    }
    args[name.substr(2)] = argv[i + 1];
  }
  try {
    return callgate::Run(args);
  } catch (const std::exception& e) {
    std::cerr << "callgate_bench_busy: " << e.what() << "\n";
    return 1;
  }
}

// SlotMap: which master serves each of the 16384 hash slots, read from CLUSTER SLOTS and patched
// by MOVED. A plain value owned by the client's I/O thread; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "redis/cluster_client.h"
#include "redis/reply.h"

namespace callgate::redis {

inline constexpr int kSlotCount = 16384;

class SlotMap {
 public:
  SlotMap() : owner_(kSlotCount, -1) {}

  // The master of `slot`, or nullptr while no master is known for it.
  const Endpoint* MasterOf(std::uint16_t slot) const {
    const int index = owner_[slot];
    return index < 0 ? nullptr : &nodes_[static_cast<std::size_t>(index)].master;
  }
  // A MOVED: `slot` is now served by `master` (a node the map may not know yet).
  void Assign(std::uint16_t slot, const Endpoint& master);
  // Every node the map names, masters first, each once: where a refresh may ask.
  std::vector<Endpoint> KnownNodes() const;
  bool empty() const { return nodes_.empty(); }
  int covered_slots() const;

  // CLUSTER SLOTS' reply, as sent by the node at `answered_by` (whose host stands in for an
  // empty one: Redis sends "" when it knows no better address for itself).
  static Result<SlotMap, std::string> FromClusterSlots(const Reply& reply,
                                                       std::string_view answered_by);

 private:
  struct Shard {
    Endpoint master;
    std::vector<Endpoint> replicas;
  };
  int IndexOf(const Endpoint& master);

  std::vector<Shard> nodes_;
  std::vector<int> owner_;  // slot -> index in nodes_, -1 when uncovered
};

}  // namespace callgate::redis

// SlotMap: parsing CLUSTER SLOTS and patching the map on MOVED.
#include "redis/slot_map.h"

#include <algorithm>

namespace callgate::redis {
namespace {

// One node entry of a CLUSTER SLOTS range: [host, port, id, …].
Result<Endpoint, std::string> NodeOf(const Reply& node, std::string_view answered_by) {
  if (node.type != Reply::Type::kArray || node.elements.size() < 2 ||
      node.elements[0].type != Reply::Type::kString ||
      node.elements[1].type != Reply::Type::kInteger) {
    return std::string("a node entry is not [host, port, …]");
  }
  const std::int64_t port = node.elements[1].integer;
  if (port <= 0 || port > 65535) return std::string("a node's port is out of range");
  std::string host = node.elements[0].str;
  if (host.empty()) host = std::string(answered_by);
  return Endpoint{std::move(host), static_cast<std::uint16_t>(port)};
}

}  // namespace

int SlotMap::IndexOf(const Endpoint& master) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].master == master) return static_cast<int>(i);
  }
  nodes_.push_back(Shard{master, {}});
  return static_cast<int>(nodes_.size() - 1);
}

void SlotMap::Assign(std::uint16_t slot, const Endpoint& master) {
  owner_[slot % kSlotCount] = IndexOf(master);
}

std::vector<Endpoint> SlotMap::KnownNodes() const {
  std::vector<Endpoint> out;
  auto add = [&out](const Endpoint& e) {
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  };
  for (const Shard& shard : nodes_) add(shard.master);
  for (const Shard& shard : nodes_) {
    for (const Endpoint& replica : shard.replicas) add(replica);
  }
  return out;
}

int SlotMap::covered_slots() const {
  return static_cast<int>(
      std::count_if(owner_.begin(), owner_.end(), [](int i) { return i >= 0; }));
}

Result<SlotMap, std::string> SlotMap::FromClusterSlots(const Reply& reply,
                                                       std::string_view answered_by) {
  if (reply.type == Reply::Type::kError) return "CLUSTER SLOTS failed: " + reply.str;
  if (reply.type != Reply::Type::kArray) return std::string("CLUSTER SLOTS: not an array");
  SlotMap map;
  for (const Reply& range : reply.elements) {
    if (range.type != Reply::Type::kArray || range.elements.size() < 3 ||
        range.elements[0].type != Reply::Type::kInteger ||
        range.elements[1].type != Reply::Type::kInteger) {
      return std::string("CLUSTER SLOTS: a range is not [start, end, master, …]");
    }
    const std::int64_t start = range.elements[0].integer;
    const std::int64_t end = range.elements[1].integer;
    if (start < 0 || end >= kSlotCount || start > end) {
      return std::string("CLUSTER SLOTS: a slot range is out of bounds");
    }
    auto master = NodeOf(range.elements[2], answered_by);
    if (!master.ok()) return "CLUSTER SLOTS: " + master.error();
    // "?" is how Redis 7 names a node whose address it does not know: such a range stays
    // uncovered (commands for it back off until a refresh knows better).
    if (master->host == "?") continue;
    const int index = map.IndexOf(*master);
    for (std::size_t i = 3; i < range.elements.size(); ++i) {
      auto replica = NodeOf(range.elements[i], answered_by);
      if (!replica.ok()) return "CLUSTER SLOTS: " + replica.error();
      auto& replicas = map.nodes_[static_cast<std::size_t>(index)].replicas;
      if (replica->host != "?" &&
          std::find(replicas.begin(), replicas.end(), *replica) == replicas.end()) {
        replicas.push_back(std::move(*replica));
      }
    }
    std::fill(map.owner_.begin() + start, map.owner_.begin() + end + 1, index);
  }
  if (map.nodes_.empty()) return std::string("CLUSTER SLOTS: no slot is served");
  return map;
}

}  // namespace callgate::redis

#include "redis/slot_map.h"

#include <gtest/gtest.h>

namespace callgate::redis {
namespace {

Reply Int(std::int64_t v) { return Reply{Reply::Type::kInteger, v, "", {}}; }
Reply Str(std::string s) { return Reply{Reply::Type::kString, 0, std::move(s), {}}; }
Reply Arr(std::vector<Reply> e) { return Reply{Reply::Type::kArray, 0, "", std::move(e)}; }
Reply Node(std::string host, int port, std::string id) {
  return Arr({Str(std::move(host)), Int(port), Str(std::move(id))});
}

// Three masters with one replica each, as CLUSTER SLOTS lists them.
Reply ThreeShards() {
  return Arr({
      Arr({Int(0), Int(5460), Node("127.0.0.1", 7000, "a"), Node("127.0.0.1", 7003, "d")}),
      Arr({Int(5461), Int(10922), Node("127.0.0.1", 7001, "b"), Node("127.0.0.1", 7004, "e")}),
      Arr({Int(10923), Int(16383), Node("127.0.0.1", 7002, "c"), Node("127.0.0.1", 7005, "f")}),
  });
}

TEST(SlotMapTest, EverySlotGoesToItsRangesMaster) {
  auto map = SlotMap::FromClusterSlots(ThreeShards(), "127.0.0.1");
  ASSERT_TRUE(map.ok()) << map.error();
  EXPECT_EQ(map->covered_slots(), kSlotCount);
  EXPECT_EQ(*map->MasterOf(0), (Endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->MasterOf(5460), (Endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->MasterOf(5461), (Endpoint{"127.0.0.1", 7001}));
  EXPECT_EQ(*map->MasterOf(16383), (Endpoint{"127.0.0.1", 7002}));
}

TEST(SlotMapTest, KnownNodesListMastersFirstThenReplicasOnce) {
  auto map = SlotMap::FromClusterSlots(ThreeShards(), "127.0.0.1");
  ASSERT_TRUE(map.ok());
  auto nodes = map->KnownNodes();
  ASSERT_EQ(nodes.size(), 6u);
  EXPECT_EQ(nodes[0].port, 7000);
  EXPECT_EQ(nodes[2].port, 7002);
  EXPECT_EQ(nodes[3].port, 7003);
}

TEST(SlotMapTest, AMasterServingSeveralRangesIsOneNode) {
  auto map =
      SlotMap::FromClusterSlots(Arr({Arr({Int(0), Int(99), Node("10.0.0.1", 6379, "a")}),
                                     Arr({Int(100), Int(199), Node("10.0.0.2", 6379, "b")}),
                                     Arr({Int(200), Int(16383), Node("10.0.0.1", 6379, "a")})}),
                                "10.0.0.1");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->KnownNodes().size(), 2u);
  EXPECT_EQ(map->MasterOf(300)->host, "10.0.0.1");
}

TEST(SlotMapTest, UncoveredSlotsHaveNoMaster) {
  auto map = SlotMap::FromClusterSlots(Arr({Arr({Int(0), Int(99), Node("h", 1, "a")})}), "h");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->covered_slots(), 100);
  EXPECT_EQ(map->MasterOf(100), nullptr);
}

TEST(SlotMapTest, AnEmptyHostIsTheAnsweringNodes) {
  auto map =
      SlotMap::FromClusterSlots(Arr({Arr({Int(0), Int(16383), Node("", 7000, "a")})}), "10.1.2.3");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(*map->MasterOf(42), (Endpoint{"10.1.2.3", 7000}));
}

TEST(SlotMapTest, ANodeOfUnknownAddressLeavesItsRangeUncovered) {
  auto map = SlotMap::FromClusterSlots(Arr({Arr({Int(0), Int(9), Node("?", 7000, "a")}),
                                            Arr({Int(10), Int(16383), Node("h", 7001, "b")})}),
                                       "h");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->MasterOf(5), nullptr);
  EXPECT_EQ(map->MasterOf(10)->port, 7001);
}

TEST(SlotMapTest, MovedPatchesOneSlot) {
  auto map = SlotMap::FromClusterSlots(ThreeShards(), "127.0.0.1");
  ASSERT_TRUE(map.ok());
  map->Assign(100, Endpoint{"127.0.0.1", 7001});
  EXPECT_EQ(map->MasterOf(100)->port, 7001);
  EXPECT_EQ(map->MasterOf(99)->port, 7000);
  map->Assign(101, Endpoint{"127.0.0.1", 7010});  // a node it did not know
  EXPECT_EQ(map->MasterOf(101)->port, 7010);
  EXPECT_EQ(map->KnownNodes().front().port, 7000);
}

TEST(SlotMapTest, MalformedRepliesAreRefusedWithAReason) {
  auto error_of = [](const Reply& reply) {
    auto map = SlotMap::FromClusterSlots(reply, "h");
    EXPECT_FALSE(map.ok());
    return map.ok() ? std::string() : map.error();
  };
  EXPECT_EQ(
      error_of(Reply{Reply::Type::kError, 0, "ERR This instance has cluster support disabled", {}}),
      "CLUSTER SLOTS failed: ERR This instance has cluster support disabled");
  EXPECT_EQ(error_of(Str("x")), "CLUSTER SLOTS: not an array");
  EXPECT_EQ(error_of(Arr({})), "CLUSTER SLOTS: no slot is served");
  EXPECT_EQ(error_of(Arr({Arr({Int(0), Int(16384), Node("h", 1, "a")})})),
            "CLUSTER SLOTS: a slot range is out of bounds");
  EXPECT_EQ(error_of(Arr({Arr({Int(5), Int(4), Node("h", 1, "a")})})),
            "CLUSTER SLOTS: a slot range is out of bounds");
  EXPECT_EQ(error_of(Arr({Arr({Int(0), Int(1)})})),
            "CLUSTER SLOTS: a range is not [start, end, master, …]");
  EXPECT_EQ(error_of(Arr({Arr({Int(0), Int(1), Arr({Str("h")})})})),
            "CLUSTER SLOTS: a node entry is not [host, port, …]");
  EXPECT_EQ(error_of(Arr({Arr({Int(0), Int(1), Node("h", 70000, "a")})})),
            "CLUSTER SLOTS: a node's port is out of range");
}

}  // namespace
}  // namespace callgate::redis

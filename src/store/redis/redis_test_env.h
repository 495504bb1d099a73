// Test-only: a RedisClusterStore on the cluster the test fixture started (seeds in the environment
// variable CALLGATE_TEST_REDIS_CLUSTER, "HOST:PORT[,…]"), under a fresh random key prefix so
// tests never see each other's keys. A missing variable fails the test, never skips it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "store/redis/redis_cluster_store.h"

namespace callgate {

inline std::string FreshTestPrefix() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device random;
  std::string prefix = "t";
  for (int i = 0; i < 12; ++i) prefix += kHex[random() & 0xf];
  return prefix + ":";
}

// Options for the test cluster; `prefix` empty: a fresh one.
inline RedisStoreOptions TestRedisOptions(std::string prefix = "") {
  RedisStoreOptions options;
  const char* seeds = std::getenv("CALLGATE_TEST_REDIS_CLUSTER");
  if (seeds == nullptr) {
    ADD_FAILURE() << "CALLGATE_TEST_REDIS_CLUSTER is not set (run through ctest, whose fixture "
                     "starts the cluster)";
    return options;
  }
  auto endpoints = redis::ParseEndpoints(seeds);
  if (!endpoints) {
    ADD_FAILURE() << endpoints.error();
    return options;
  }
  options.seeds = std::move(*endpoints);
  options.key_prefix = prefix.empty() ? FreshTestPrefix() : std::move(prefix);
  options.warn = [](const std::string& line) { ADD_FAILURE() << "store warned: " << line; };
  return options;
}

inline std::unique_ptr<RedisClusterStore> OpenTestRedisStore(RedisStoreOptions options) {
  auto store = RedisClusterStore::Open(std::move(options));
  if (!store) {
    ADD_FAILURE() << store.error();
    return nullptr;
  }
  return std::move(*store);
}

inline std::unique_ptr<RedisClusterStore> OpenTestRedisStore() {
  return OpenTestRedisStore(TestRedisOptions());
}

}  // namespace callgate

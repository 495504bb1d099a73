#include "app/stores.h"

#include <filesystem>

#include "http/server.h"
#include "log/log.h"

namespace callgate {

Result<std::unique_ptr<Stores>, std::string> Stores::Open(
    const StoreConfig& config, std::function<void(const CommitStats&)> commit_observer) {
  std::unique_ptr<Stores> stores(new Stores());
  if (!config.redis_cluster.empty()) {
    auto seeds = redis::ParseEndpoints(config.redis_cluster);
    if (!seeds) return "--redis-cluster: " + seeds.error();
    auto redis = RedisClusterStore::Open(
        {.seeds = std::move(*seeds),
         .key_prefix = config.redis_key_prefix,
         .report_seen = config.serving,
         .warn = [](const std::string& line) { LogNotice(LogLevel::kWarn, line); },
         // The answers of one read from a connection reach the server threads together.
         .completion_scope = HttpServer::ResponseBatch::Run});
    if (!redis) return "Redis Cluster at " + config.redis_cluster + ": " + redis.error();
    stores->redis_ = std::move(*redis);
    stores->pairs_ = stores->redis_.get();
    stores->tenants_ = stores->redis_.get();
    stores->description_ = "Redis Cluster at " + config.redis_cluster;
    return stores;
  }
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return "cannot create data directory " + config.data_dir + ": " + ec.message();
  // A commit's responses reach the server threads together (HttpServer::ResponseBatch). A store
  // opened read-only says on standard error when it can write again.
  auto sqlite = SqliteStore::Open(
      {.path = config.data_dir + "/callgate.db",
       .cache_bytes = config.cache_bytes,
       .completion_scope = HttpServer::ResponseBatch::Run,
       .notice = [](const std::string& line) { LogNotice(LogLevel::kInfo, line); },
       .commit_observer = std::move(commit_observer)});
  if (!sqlite) return sqlite.error();
  stores->sqlite_ = std::move(*sqlite);
  stores->pairs_ = stores->sqlite_.get();
  stores->tenants_ = stores->sqlite_.get();
  stores->description_ = "data directory " + config.data_dir;
  return stores;
}

std::string Stores::read_only_reason() const {
  return sqlite_ ? sqlite_->read_only_reason() : std::string();
}

}  // namespace callgate

// ClusterClient: callgate's Redis Cluster client. Routes each command by the hash slot of its
// routing key to the slot's master over Boost.Asio sockets (one multiplexed, pipelined write
// connection per master, plus one for reads so they never queue behind a WAIT), follows the
// cluster's redirections and outages within a per-command deadline, and makes writes durable
// on a replica (WAIT, batched per connection). It knows Redis, not callgate's domain: the store
// backend (store/redis) builds on it. Thread-safe; callbacks run on the client's own I/O thread.
//
// Failure semantics (RedisFailure): a command either has a reply, or the caller learns whether it
// may have been applied. kUnavailable means it was not (it never left, or the server refused it
// before running it: CLUSTERDOWN, TRYAGAIN, LOADING, NOREPLICAS … past the deadline), so it may be
// sent again; kUnknownOutcome and kNotReplicated mean it may have been applied, so the client
// never re-sends it by itself; the caller answers 500 and relies on idempotent writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "redis/reply.h"

namespace callgate::redis {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
// "HOST:PORT[,HOST:PORT…]" (the --redis-cluster flag); an error names what is wrong.
Result<std::vector<Endpoint>, std::string> ParseEndpoints(std::string_view text);

enum class FailureKind {
  kUnavailable,     // not applied: never sent, or refused before running; safe to send again
  kUnknownOutcome,  // sent, no reply (transport error or deadline): may have been applied
  kNotReplicated,   // applied on the master, but no replica acknowledged it within the deadline
  kServerError,     // the server answered an error the client does not handle (a script's
                    // error, WRONGTYPE, …): the message says which
};
struct Failure {
  FailureKind kind;
  std::string message;  // for the log: never carries a command's arguments
};
using CommandResult = Result<Reply, Failure>;
using CommandDone = std::function<void(CommandResult)>;

// A Lua script run by EVALSHA, loaded (SCRIPT LOAD) on a node that answers NOSCRIPT. The sha1 is
// computed once, here.
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

struct ClientOptions {
  std::vector<Endpoint> seeds;
  // How long one command may take, redirections, retries and back-off included.
  std::chrono::milliseconds command_timeout{2000};
  // What a durable write waits for a replica's acknowledgement (WAIT 1 <ms>); within
  // command_timeout.
  std::chrono::milliseconds replica_timeout{500};
  // How often the slot map is read again even when nothing suggests it changed.
  std::chrono::milliseconds refresh_interval{5000};
  // If set, runs the callbacks of the replies of one read from a connection (e.g.
  // HttpServer::ResponseBatch::Run, so that the answers they give reach their threads together).
  std::function<void(const std::function<void()>&)> completion_scope;
};

enum class Durability {
  kNone,     // a read, or a write that needs no replica (none of callgate's state)
  kReplica,  // answered only once at least one replica acknowledged it (else kNotReplicated)
};

class ClusterClient {
 public:
  // Connects to a seed and reads the slot map; an error says why no seed would do.
  static Result<std::unique_ptr<ClusterClient>, std::string> Connect(ClientOptions options);
  virtual ~ClusterClient() = default;

  // Sends `args` (the command and its arguments) to the master of the slot of `routing_key`
  // (a key of the command: its {hash tag} counts, as Redis hashes it). `done` runs exactly once.
  virtual void Run(std::string_view routing_key, std::vector<std::string> args,
                   Durability durability, CommandDone done) = 0;
  // EVALSHA `script` with `keys` (all in one slot; routed by keys[0]) and `args`.
  virtual void RunScript(const Script& script, std::vector<std::string> keys,
                         std::vector<std::string> args, Durability durability,
                         CommandDone done) = 0;
  // The same, blocking: for the admin CLI, start-up and tests, never the request path.
  CommandResult RunSync(std::string_view routing_key, std::vector<std::string> args,
                        Durability durability);
  CommandResult RunScriptSync(const Script& script, std::vector<std::string> keys,
                              std::vector<std::string> args, Durability durability);

  // What the client has met so far, for metrics, logs and tests. Counters only grow.
  struct Stats {
    std::uint64_t moved = 0;             // MOVED replies followed
    std::uint64_t asked = 0;             // ASK replies followed
    std::uint64_t retries = 0;           // resends after a refusal (TRYAGAIN, …) or an outage
    std::uint64_t script_loads = 0;      // SCRIPT LOADs after NOSCRIPT
    std::uint64_t map_refreshes = 0;     // CLUSTER SLOTS reads
    std::uint64_t connections_lost = 0;  // connections closed by an error or a stall
  };
  virtual Stats stats() const { return {}; }

 protected:
  // True on the thread that runs callbacks, where blocking on a reply would deadlock: RunSync
  // refuses to run there.
  virtual bool OnCallbackThread() const { return false; }
};

// The hash slot Redis gives `key` (CRC16-XMODEM of its {hash tag} if it has one, mod 16384).
std::uint16_t HashSlot(std::string_view key);

}  // namespace callgate::redis

// Connection: one pipelined TCP connection to one Redis node, on the client's I/O thread. Many
// commands in flight, replies matched in order; durable writes' replies are held for one WAIT per
// read (a group commit). Owned (shared) by the client and its own pending handlers; reports
// replies and its loss to its ConnectionOwner. Not thread-safe: I/O thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/cluster_client.h"
#include "redis/request.h"
#include "redis/resp.h"

namespace callgate::redis {

class Connection;

class ConnectionOwner {
 public:
  // A command's answer (not a WAIT's), for a request not yet finished. `asked`: it followed ASKING.
  virtual void OnReply(const std::shared_ptr<Connection>& connection,
                       const std::shared_ptr<Request>& request, bool asked, Reply reply) = 0;
  // The connection died before `request` was written: it may go elsewhere.
  virtual void OnUnsent(const std::shared_ptr<Request>& request, const std::string& why) = 0;
  // The connection is gone (called once, before its requests are failed or handed back).
  virtual void OnConnectionLost(Connection& connection, const std::string& why) = 0;

 protected:
  ~ConnectionOwner() = default;
};

struct ConnectionLimits {
  std::size_t max_queued = 65536;  // commands unsent + unanswered
  // One reply: far beyond anything callgate reads (a pair's state and history), well below
  // Redis's own 512 MiB bulk limit.
  std::size_t max_reply_bytes = 64u << 20;
  std::chrono::milliseconds connect_timeout{2000};
  // No byte for this long while commands wait: the node is taken for dead (a stopped process
  // keeps its sockets open). Longer than any WAIT.
  std::chrono::milliseconds stall_timeout{3000};
  std::chrono::milliseconds replica_timeout{500};
  // ClientOptions::completion_scope.
  std::function<void(const std::function<void()>&)> completion_scope;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::io_context& io, Endpoint endpoint, ConnectionOwner& owner,
             ConnectionLimits limits);

  // Resolves and connects; commands sent meanwhile wait.
  void Start();
  // Queues `request` (after ASKING if `asking`). False when the queue is full (nothing queued).
  bool Send(const std::shared_ptr<Request>& request, bool asking);
  // SCRIPT LOAD `source` ahead of the commands queued after it (its reply is not awaited).
  void SendScriptLoad(std::shared_ptr<const std::string> source);
  // `request` succeeded: its reply goes to its caller once a WAIT sent after it acknowledges it.
  void HoldForReplica(const std::shared_ptr<Request>& request, Reply reply);
  // Closes and reports the loss: answered-but-unacknowledged and written requests fail, unsent
  // ones go back to the owner. Idempotent.
  void Fail(const std::string& why);
  // Closes without a word: the client is going away and has finished every request already.
  void Abandon();

  const Endpoint& endpoint() const { return endpoint_; }
  bool closed() const { return closed_; }
  std::size_t queued() const { return pending_.size() + in_flight_.size(); }

 private:
  enum class Kind { kCommand, kAsking, kScriptLoad, kWait };
  struct Entry {
    Kind kind = Kind::kCommand;
    std::shared_ptr<Request> request;               // kCommand
    bool asking = false;                            // kCommand: preceded by ASKING
    std::shared_ptr<const std::string> script;      // kScriptLoad
    std::vector<std::shared_ptr<Request>> covered;  // kWait: whose replies it releases
  };

  void ScheduleFlush();
  void Flush();
  void Read();
  void OnBytes(std::size_t size);
  void HandleReply(Reply reply);
  void AnswerWait(Entry& wait, const Reply& reply);
  void ArmStallTimer();

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  ConnectionOwner& owner_;
  ConnectionLimits limits_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer stall_timer_;
  ReplyReader reader_;
  std::deque<Entry> pending_;                   // not yet handed to the socket
  std::deque<Entry> in_flight_;                 // written, in order, awaiting their replies
  std::vector<std::shared_ptr<Request>> held_;  // replied, waiting for the next WAIT
  std::string out_;                             // the bytes being written
  std::vector<char> in_;
  std::chrono::steady_clock::time_point last_progress_;
  bool connected_ = false;
  bool writing_ = false;
  bool flush_posted_ = false;
  bool stall_armed_ = false;
  bool closed_ = false;
};

}  // namespace callgate::redis

// Connection: the pipeline, the reply matching and the per-connection WAIT batching.
#include "redis/connection.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <utility>

namespace callgate::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
std::string Describe(const Endpoint& e) { return e.host + ":" + std::to_string(e.port); }
}  // namespace

Connection::Connection(asio::io_context& io, Endpoint endpoint, ConnectionOwner& owner,
                       ConnectionLimits limits)
    : io_(io),
      endpoint_(std::move(endpoint)),
      owner_(owner),
      limits_(limits),
      resolver_(io),
      socket_(io),
      connect_timer_(io),
      stall_timer_(io),
      reader_(limits.max_reply_bytes),
      in_(64 * 1024) {}

void Connection::Start() {
  auto self = shared_from_this();
  connect_timer_.expires_after(limits_.connect_timeout);
  connect_timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec && !self->connected_ && !self->closed_) self->Fail("connect timed out");
  });
  auto on_connected = [self](boost::system::error_code ec) {
    if (self->closed_) return;
    if (ec) {
      self->Fail("connect failed: " + ec.message());
      return;
    }
    self->connected_ = true;
    self->connect_timer_.cancel();
    boost::system::error_code ignored;
    self->socket_.set_option(tcp::no_delay(true), ignored);
    self->Read();
    self->Flush();
  };
  // An address needs no resolver (whose asynchronous form runs a thread of its own).
  boost::system::error_code parse_error;
  const auto address = asio::ip::make_address(endpoint_.host, parse_error);
  if (!parse_error) {
    socket_.async_connect(tcp::endpoint(address, endpoint_.port), on_connected);
    return;
  }
  resolver_.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [self, on_connected](boost::system::error_code ec, tcp::resolver::results_type results) {
        if (self->closed_) return;
        if (ec) {
          self->Fail("cannot resolve: " + ec.message());
          return;
        }
        asio::async_connect(self->socket_, results,
                            [on_connected](boost::system::error_code ec, const tcp::endpoint&) {
                              on_connected(ec);
                            });
      });
}

bool Connection::Send(const std::shared_ptr<Request>& request, bool asking) {
  if (closed_) {
    owner_.OnUnsent(request, Describe(endpoint_) + ": connection closed");
    return true;
  }
  if (queued() >= limits_.max_queued) return false;
  Entry entry;
  entry.kind = Kind::kCommand;
  entry.request = request;
  entry.asking = asking;
  pending_.push_back(std::move(entry));
  ScheduleFlush();
  return true;
}

void Connection::ScheduleFlush() {
  // Commands submitted in the same turn of the I/O loop leave in one write: a flush is posted
  // behind them rather than run at once. A write under way flushes again when it ends.
  if (flush_posted_ || writing_) return;
  flush_posted_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->Flush();
  });
}

void Connection::SendScriptLoad(std::shared_ptr<const std::string> source) {
  if (closed_) return;
  Entry entry;
  entry.kind = Kind::kScriptLoad;
  entry.script = std::move(source);
  pending_.push_back(std::move(entry));
  ScheduleFlush();
}

void Connection::HoldForReplica(const std::shared_ptr<Request>& request, Reply reply) {
  request->awaiting_replica = true;
  request->held_reply = std::move(reply);
  held_.push_back(request);
}

void Connection::Flush() {
  if (closed_ || !connected_ || writing_ || pending_.empty()) return;
  if (in_flight_.empty()) last_progress_ = std::chrono::steady_clock::now();
  for (Entry& entry : pending_) {
    switch (entry.kind) {
      case Kind::kCommand: {
        // Past its deadline before it left: already answered kUnavailable, so never sent.
        if (entry.request->finished) continue;
        if (entry.asking) {
          AppendCommand({"ASKING"}, out_);
          Entry asking;
          asking.kind = Kind::kAsking;
          in_flight_.push_back(std::move(asking));
        }
        AppendCommand(entry.request->args, out_);
        entry.request->written = true;
        break;
      }
      case Kind::kAsking:
        break;
      case Kind::kScriptLoad:
        AppendCommand({"SCRIPT", "LOAD", *entry.script}, out_);
        break;
      case Kind::kWait:
        AppendCommand({"WAIT", "1", std::to_string(limits_.replica_timeout.count())}, out_);
        break;
    }
    in_flight_.push_back(std::move(entry));
  }
  pending_.clear();
  if (out_.empty()) return;
  writing_ = true;
  ArmStallTimer();
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (self->closed_) return;
                      if (ec) {
                        self->Fail("write failed: " + ec.message());
                        return;
                      }
                      self->out_.clear();
                      self->Flush();
                    });
}

void Connection::Read() {
  socket_.async_read_some(asio::buffer(in_), [self = shared_from_this()](
                                                 boost::system::error_code ec, std::size_t size) {
    if (self->closed_) return;
    if (ec) {
      self->Fail(ec == asio::error::eof ? std::string("closed by the server")
                                        : "read failed: " + ec.message());
      return;
    }
    self->OnBytes(size);
    if (!self->closed_) self->Read();
  });
}

void Connection::OnBytes(std::size_t size) {
  last_progress_ = std::chrono::steady_clock::now();
  if (!reader_.Feed(in_.data(), size)) {
    Fail("protocol error: " + reader_.error());
    return;
  }
  auto handle_all = [this] {
    while (true) {
      std::optional<Reply> reply = reader_.Next();
      if (!reply) {
        if (!reader_.error().empty()) Fail("protocol error: " + reader_.error());
        return;
      }
      HandleReply(std::move(*reply));
      if (closed_) return;
    }
  };
  if (limits_.completion_scope) {
    limits_.completion_scope(handle_all);
  } else {
    handle_all();
  }
  if (closed_) return;
  // One WAIT for every durable write answered in this read: they all precede it on this
  // connection, so its acknowledgement covers them all (a group commit).
  if (!held_.empty()) {
    Entry wait;
    wait.kind = Kind::kWait;
    wait.covered = std::move(held_);
    held_.clear();
    pending_.push_back(std::move(wait));
    Flush();
  }
}

void Connection::HandleReply(Reply reply) {
  if (in_flight_.empty()) {
    Fail("a reply to no command");
    return;
  }
  Entry entry = std::move(in_flight_.front());
  in_flight_.pop_front();
  switch (entry.kind) {
    case Kind::kAsking:
    case Kind::kScriptLoad:
      // Their failures show in the reply of the command that follows them.
      return;
    case Kind::kWait:
      AnswerWait(entry, reply);
      return;
    case Kind::kCommand:
      // A command failed at its deadline still has its place in the pipeline: its late reply
      // is read here, and dropped.
      if (entry.request->finished) return;
      entry.request->written = false;
      owner_.OnReply(shared_from_this(), entry.request, entry.asking, std::move(reply));
      return;
  }
}

void Connection::AnswerWait(Entry& wait, const Reply& reply) {
  const bool acknowledged = reply.type == Reply::Type::kInteger && reply.integer >= 1;
  const std::string why = reply.is_error()
                              ? "WAIT failed: " + reply.str
                              : "no replica acknowledged the write within " +
                                    std::to_string(limits_.replica_timeout.count()) + " ms";
  for (const auto& request : wait.covered) {
    if (request->finished) continue;
    request->awaiting_replica = false;
    if (acknowledged) {
      Reply held = std::move(request->held_reply);
      request->Finish(std::move(held));
    } else {
      request->awaiting_replica = true;
      request->Finish(Failure{FailureKind::kNotReplicated, why});
    }
  }
}

void Connection::ArmStallTimer() {
  if (stall_armed_) return;
  stall_armed_ = true;
  stall_timer_.expires_at(last_progress_ + limits_.stall_timeout);
  stall_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->stall_armed_ = false;
    if (ec || self->closed_ || self->in_flight_.empty()) return;
    if (std::chrono::steady_clock::now() - self->last_progress_ >= self->limits_.stall_timeout) {
      self->Fail("no reply for " + std::to_string(self->limits_.stall_timeout.count()) + " ms");
      return;
    }
    self->ArmStallTimer();
  });
}

void Connection::Fail(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  connected_ = false;
  auto self = shared_from_this();  // the owner may drop its reference in OnConnectionLost
  boost::system::error_code ignored;
  resolver_.cancel();
  socket_.close(ignored);
  connect_timer_.cancel();
  stall_timer_.cancel();
  owner_.OnConnectionLost(*this, why);

  const std::string message = Describe(endpoint_) + ": " + why;
  auto in_flight = std::move(in_flight_);
  auto pending = std::move(pending_);
  auto held = std::move(held_);
  in_flight_.clear();
  pending_.clear();
  held_.clear();
  auto not_replicated = [&message](const std::shared_ptr<Request>& request) {
    request->Finish(Failure{FailureKind::kNotReplicated, message});
  };
  for (Entry& entry : in_flight) {
    if (entry.kind == Kind::kCommand && !entry.request->finished) {
      // Written, unanswered: it may have run. Never re-sent by the client.
      entry.request->Finish(Failure{entry.request->PendingFailure(), message});
    } else if (entry.kind == Kind::kWait) {
      for (const auto& request : entry.covered) not_replicated(request);
    }
  }
  for (const auto& request : held) not_replicated(request);
  for (Entry& entry : pending) {
    if (entry.kind == Kind::kCommand && !entry.request->finished) {
      owner_.OnUnsent(entry.request, message);
    } else if (entry.kind == Kind::kWait) {
      for (const auto& request : entry.covered) not_replicated(request);
    }
  }
}

void Connection::Abandon() {
  closed_ = true;
  connected_ = false;
  boost::system::error_code ignored;
  resolver_.cancel();
  socket_.close(ignored);
  connect_timer_.cancel();
  stall_timer_.cancel();
  pending_.clear();
  in_flight_.clear();
  held_.clear();
}

}  // namespace callgate::redis

// Request: one caller's command from Run() until its callback, with what the client learnt on the
// way (redirections, refusals, whether it may have been applied). Shared by the client and its
// connections; touched only on the client's I/O thread (created on the caller's, before posting).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "redis/cluster_client.h"

namespace callgate::redis {

struct Request {
  using Clock = std::chrono::steady_clock;

  std::vector<std::string> args;
  std::uint16_t slot = 0;
  Durability durability = Durability::kNone;
  Clock::time_point deadline;
  CommandDone done;
  // EVALSHA only: the source to SCRIPT LOAD when a node answers NOSCRIPT.
  std::shared_ptr<const std::string> script_source;
  // The client's own commands (CLUSTER SLOTS): this node only, no redirection, no retry.
  std::optional<Endpoint> pinned;
  // An ASK: the next attempt, only, goes to this node after ASKING.
  std::optional<Endpoint> ask_target;
  Reply held_reply;        // a durable write's reply, held until its WAIT answers
  std::string last_error;  // why the last attempt was refused: the deadline's message
  int refusals = 0;        // back-off step
  int redirects = 0;
  int script_loads = 0;
  bool written = false;           // the current attempt went to a socket and has no answer yet
  bool awaiting_replica = false;  // applied; its WAIT has not answered
  bool finished = false;

  // Runs `done` once; later calls (a reply after the deadline) do nothing.
  void Finish(CommandResult result) {
    if (finished) return;
    finished = true;
    CommandDone callback = std::move(done);
    done = nullptr;
    args = {};
    script_source.reset();
    held_reply = {};
    callback(std::move(result));
  }
  // What the caller must assume if the command ends now without an answer.
  FailureKind PendingFailure() const {
    if (awaiting_replica) return FailureKind::kNotReplicated;
    return written ? FailureKind::kUnknownOutcome : FailureKind::kUnavailable;
  }
};

}  // namespace callgate::redis

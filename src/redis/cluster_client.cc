// ClusterClient's implementation: routing by slot, redirections, refusals and outages within each
// command's deadline, the slot map's refreshes, and the blocking wrappers. Everything but Run's
// hand-off happens on the client's one I/O thread, so the state below needs no lock.
#include "redis/cluster_client.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cassert>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "redis/connection.h"
#include "redis/request.h"
#include "redis/server_errors.h"
#include "redis/slot_map.h"

namespace callgate::redis {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// MOVED storms during a resharding must not turn into a storm of CLUSTER SLOTS.
constexpr milliseconds kMinRefreshGap{100};
// A node that failed is asked for the map only after the others, for this long.
constexpr milliseconds kDownFor{2000};
// Past this many redirections in a row a command backs off before following the next: two nodes
// disagreeing about a slot settle in milliseconds, and meanwhile they are not hammered.
constexpr int kRedirectsBeforeBackoff = 8;
// The most a retry leaves, before its deadline, for its reply (RetryLater).
constexpr milliseconds kReplyRoom{50};

std::string Name(const Endpoint& e) { return e.host + ":" + std::to_string(e.port); }

// Puts the calling thread (the client's I/O thread) under SCHED_BATCH: the same share of the CPU,
// but its wake-ups do not preempt the thread that is running. Callers hand each command over as
// they go, and each hand-off wakes this thread: under the default policy it preempted the HTTP
// thread at once whenever the two shared a core, sent that one command, slept, and was woken
// again by the next — a context switch and a write per command. Now the running thread finishes
// its turn first and the commands it gave leave together. Measured on the Redis Cluster status
// GET (bench/run.sh cluster's setting: callgate, its I/O thread and the six nodes on one core):
// 1.5x the requests per second, callgate's CPU per request 41-47 -> 27 us. Best effort: a
// system that refuses it leaves the default policy.
void NeverPreemptOnWakeUp() {
#ifdef SCHED_BATCH
  sched_param param{};
  param.sched_priority = 0;
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
}

class ClusterClientImpl final : public ClusterClient, private ConnectionOwner {
 public:
  explicit ClusterClientImpl(ClientOptions options)
      : options_(std::move(options)),
        work_(asio::make_work_guard(io_)),
        deadline_timer_(io_),
        throttle_timer_(io_),
        periodic_timer_(io_),
        rng_(std::random_device{}()) {
    limits_.connect_timeout = options_.command_timeout;
    limits_.replica_timeout = options_.replica_timeout;
    limits_.completion_scope = options_.completion_scope;
    limits_.stall_timeout =
        std::max(options_.command_timeout, options_.replica_timeout + milliseconds(1000));
    thread_ = std::thread([this] {
      NeverPreemptOnWakeUp();
      io_.run();
    });
    thread_id_ = thread_.get_id();
  }

  ~ClusterClientImpl() override {
    assert(!OnCallbackThread() && "a ClusterClient cannot be destroyed from its own callbacks");
    asio::post(io_, [this] { Shutdown(); });
    thread_.join();
  }

  // The first slot map, from the seeds in order; an empty string once one answered.
  std::string Start() {
    std::promise<std::string> result;
    asio::post(io_, [this, &result] {
      StartRefresh([&result](const std::string& error) { result.set_value(error); });
      SchedulePeriodicRefresh();
    });
    return result.get_future().get();
  }

  void Run(std::string_view routing_key, std::vector<std::string> args, Durability durability,
           CommandDone done) override {
    auto request = std::make_shared<Request>();
    request->args = std::move(args);
    request->slot = HashSlot(routing_key);
    request->durability = durability;
    request->done = std::move(done);
    Post(std::move(request));
  }

  void RunScript(const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
                 Durability durability, CommandDone done) override {
    auto request = std::make_shared<Request>();
    request->args.reserve(3 + keys.size() + args.size());
    request->args.push_back("EVALSHA");
    request->args.push_back(script.sha1());
    request->args.push_back(std::to_string(keys.size()));
    request->slot = HashSlot(keys.empty() ? std::string_view() : std::string_view(keys[0]));
    for (std::string& key : keys) request->args.push_back(std::move(key));
    for (std::string& arg : args) request->args.push_back(std::move(arg));
    request->durability = durability;
    request->script_source = SourceOf(script);
    request->done = std::move(done);
    Post(std::move(request));
  }

  Stats stats() const override {
    Stats s;
    s.moved = moved_.load(std::memory_order_relaxed);
    s.asked = asked_.load(std::memory_order_relaxed);
    s.retries = retries_.load(std::memory_order_relaxed);
    s.script_loads = script_loads_.load(std::memory_order_relaxed);
    s.map_refreshes = map_refreshes_.load(std::memory_order_relaxed);
    s.connections_lost = connections_lost_.load(std::memory_order_relaxed);
    return s;
  }

 protected:
  bool OnCallbackThread() const override { return std::this_thread::get_id() == thread_id_; }

 private:
  struct NodeConnections {
    std::shared_ptr<Connection> writes;  // durable writes: their WAITs block only this one
    std::shared_ptr<Connection> reads;   // everything else
  };

  void Post(std::shared_ptr<Request> request) {
    if (stopping_.load(std::memory_order_acquire)) {
      // Only a callback running during destruction gets here: the thread is ours, and it ends.
      request->Finish(Failure{FailureKind::kUnavailable, "the Redis client is closing"});
      return;
    }
    request->deadline = Clock::now() + options_.command_timeout;
    asio::post(io_, [this, request = std::move(request)] { Submit(request); });
  }

  // A script's source is kept once per distinct script, not copied into every command.
  std::shared_ptr<const std::string> SourceOf(const Script& script) {
    std::lock_guard lock(scripts_mutex_);
    auto& source = scripts_[script.sha1()];
    if (!source) source = std::make_shared<const std::string>(script.source());
    return source;
  }

  void Submit(const std::shared_ptr<Request>& request) {
    if (stopping_) {
      request->Finish(Failure{FailureKind::kUnavailable, "the Redis client is closing"});
      return;
    }
    if (request->args.empty()) {
      request->Finish(Failure{FailureKind::kServerError, "an empty command"});
      return;
    }
    // Every command has the same timeout, so deadlines arrive (nearly) in order: one sorted
    // queue and one timer serve them all, and the insertion is almost always at the back. (The
    // client's own CLUSTER SLOTS, with a shorter deadline, and callers racing on several
    // threads land a little earlier.)
    auto later =
        std::upper_bound(by_deadline_.begin(), by_deadline_.end(), request->deadline,
                         [](Clock::time_point deadline, const std::shared_ptr<Request>& queued) {
                           return deadline < queued->deadline;
                         });
    const bool new_front = later == by_deadline_.begin();
    by_deadline_.insert(later, request);
    if (new_front && deadline_armed_) deadline_timer_.cancel();
    ArmDeadlineTimer();
    Dispatch(request);
  }

  void Dispatch(const std::shared_ptr<Request>& request) {
    if (request->finished) return;
    if (stopping_) {
      request->Finish(Failure{FailureKind::kUnavailable, "the Redis client is closing"});
      return;
    }
    Endpoint target;
    bool asking = false;
    if (request->pinned) {
      target = *request->pinned;
    } else if (request->ask_target) {
      target = std::move(*request->ask_target);
      request->ask_target.reset();
      asking = true;
    } else if (const Endpoint* master = map_.MasterOf(request->slot)) {
      target = *master;
    } else {
      request->last_error = "no master known for slot " + std::to_string(request->slot);
      RequestRefresh();
      RetryLater(request);
      return;
    }
    const bool writes = !request->pinned && request->durability == Durability::kReplica;
    std::shared_ptr<Connection> connection = ConnectionTo(target, writes);
    if (!connection->Send(request, asking)) {
      request->Finish(
          Failure{FailureKind::kUnavailable, "too many commands queued for " + Name(target)});
    }
  }

  std::shared_ptr<Connection> ConnectionTo(const Endpoint& node, bool writes) {
    NodeConnections& pair = connections_[Name(node)];
    std::shared_ptr<Connection>& slot = writes ? pair.writes : pair.reads;
    if (!slot || slot->closed()) {
      slot = std::make_shared<Connection>(io_, node, static_cast<ConnectionOwner&>(*this), limits_);
      slot->Start();
    }
    return slot;
  }

  // A refusal or an outage before sending: the same command again after a back-off, while its
  // deadline allows (the deadline timer answers it otherwise). "Allows" leaves room for the
  // reply: a retry still in flight at the deadline would turn a refusal, which the caller may
  // send again, into an unknown outcome, which it may not (seen in CI: a command refused with
  // TRYAGAIN until its deadline was answered "no reply within 400 ms" instead of unavailable).
  void RetryLater(const std::shared_ptr<Request>& request) {
    retries_.fetch_add(1, std::memory_order_relaxed);
    const auto delay =
        BackoffDelay(request->refusals++, std::uniform_real_distribution<double>(0, 1)(rng_));
    const auto reply_room = std::min<Clock::duration>(options_.command_timeout / 8, kReplyRoom);
    if (Clock::now() + delay + reply_room >= request->deadline) return;
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([this, request, timer](boost::system::error_code ec) {
      if (!ec) Dispatch(request);
    });
  }

  void OnReply(const std::shared_ptr<Connection>& connection,
               const std::shared_ptr<Request>& request, bool asked, Reply reply) override {
    if (!reply.is_error()) {
      if (request->durability == Durability::kReplica && !request->pinned) {
        connection->HoldForReplica(request, std::move(reply));
      } else {
        request->Finish(std::move(reply));
      }
      return;
    }
    if (request->pinned) {
      request->Finish(Failure{FailureKind::kServerError, reply.str});
      return;
    }
    switch (ClassifyError(reply.str)) {
      case ErrorClass::kMoved: {
        auto redirect = ParseRedirect(reply.str, connection->endpoint().host);
        if (!redirect) break;
        moved_.fetch_add(1, std::memory_order_relaxed);
        map_.Assign(redirect->slot, redirect->target);
        RequestRefresh();
        request->last_error = reply.str;
        if (++request->redirects > kRedirectsBeforeBackoff) {
          RetryLater(request);
        } else {
          Dispatch(request);
        }
        return;
      }
      case ErrorClass::kAsk: {
        auto redirect = ParseRedirect(reply.str, connection->endpoint().host);
        if (!redirect) break;
        asked_.fetch_add(1, std::memory_order_relaxed);
        request->ask_target = redirect->target;
        request->last_error = reply.str;
        if (++request->redirects > kRedirectsBeforeBackoff) {
          RetryLater(request);
        } else {
          Dispatch(request);
        }
        return;
      }
      case ErrorClass::kRetryable:
        request->last_error = reply.str;
        if (reply.str.starts_with("CLUSTERDOWN")) RequestRefresh();
        RetryLater(request);
        return;
      case ErrorClass::kNoScript:
        // SCRIPT LOAD is not replicated to a replica that is promoted later, so any node may
        // lack the script: load it there and resend right behind it on the same connection.
        if (!request->script_source || request->script_loads >= 2) break;
        ++request->script_loads;
        script_loads_.fetch_add(1, std::memory_order_relaxed);
        connection->SendScriptLoad(request->script_source);
        if (!connection->Send(request, asked)) {
          request->Finish(Failure{FailureKind::kUnavailable,
                                  "too many commands queued for " + Name(connection->endpoint())});
        }
        return;
      case ErrorClass::kOther:
        break;
    }
    request->Finish(Failure{FailureKind::kServerError, reply.str});
  }

  void OnUnsent(const std::shared_ptr<Request>& request, const std::string& why) override {
    if (request->pinned) {
      request->Finish(Failure{FailureKind::kUnavailable, why});
      return;
    }
    request->last_error = why;
    RetryLater(request);
  }

  void OnConnectionLost(Connection& connection, const std::string&) override {
    connections_lost_.fetch_add(1, std::memory_order_relaxed);
    const std::string name = Name(connection.endpoint());
    if (auto it = connections_.find(name); it != connections_.end()) {
      if (it->second.writes.get() == &connection) it->second.writes.reset();
      if (it->second.reads.get() == &connection) it->second.reads.reset();
      if (!it->second.writes && !it->second.reads) connections_.erase(it);
    }
    down_until_[name] = Clock::now() + kDownFor;
    RequestRefresh();
  }

  // Deadlines.
  void ArmDeadlineTimer() {
    while (!by_deadline_.empty() && by_deadline_.front()->finished) by_deadline_.pop_front();
    if (by_deadline_.empty() || deadline_armed_) return;
    deadline_armed_ = true;
    deadline_timer_.expires_at(by_deadline_.front()->deadline);
    deadline_timer_.async_wait([this](boost::system::error_code ec) {
      deadline_armed_ = false;
      if (stopping_) return;
      // Cancelled for an earlier deadline, or due: either way the queue's front decides.
      (void)ec;
      ExpireDeadlines();
    });
  }

  void ExpireDeadlines() {
    const auto now = Clock::now();
    while (!by_deadline_.empty()) {
      std::shared_ptr<Request> request = by_deadline_.front();
      if (!request->finished && request->deadline > now) break;
      by_deadline_.pop_front();
      if (request->finished) continue;
      // Answered here, once; a reply arriving later is dropped by its connection.
      request->Finish(Failure{request->PendingFailure(), DeadlineMessage(*request)});
    }
    ArmDeadlineTimer();
  }

  std::string DeadlineMessage(const Request& request) const {
    const std::string limit = std::to_string(options_.command_timeout.count()) + " ms";
    if (request.awaiting_replica) return "no replica acknowledged the write within " + limit;
    if (request.written) return "no reply within " + limit;
    std::string message = "not served within " + limit;
    if (!request.last_error.empty()) message += " (last: " + request.last_error + ")";
    return message;
  }

  // The slot map.
  void RequestRefresh() {
    if (stopping_) return;
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    const auto earliest = last_refresh_ + kMinRefreshGap;
    if (Clock::now() >= earliest) {
      StartRefresh(nullptr);
      return;
    }
    if (throttle_armed_) return;
    throttle_armed_ = true;
    throttle_timer_.expires_at(earliest);
    throttle_timer_.async_wait([this](boost::system::error_code ec) {
      throttle_armed_ = false;
      if (!ec) RequestRefresh();
    });
  }

  void SchedulePeriodicRefresh() {
    periodic_timer_.expires_after(options_.refresh_interval);
    periodic_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      RequestRefresh();
      SchedulePeriodicRefresh();
    });
  }

  using RefreshDone = std::function<void(const std::string&)>;

  // Asks the known nodes (those that have not failed lately first), then the seeds, until one
  // answers CLUSTER SLOTS.
  void StartRefresh(RefreshDone done) {
    refreshing_ = true;
    last_refresh_ = Clock::now();
    auto candidates = std::make_shared<std::vector<Endpoint>>();
    std::vector<Endpoint> later;
    auto add = [&](const Endpoint& node) {
      if (std::find(candidates->begin(), candidates->end(), node) != candidates->end() ||
          std::find(later.begin(), later.end(), node) != later.end()) {
        return;
      }
      auto down = down_until_.find(Name(node));
      const bool failed_lately = down != down_until_.end() && down->second > Clock::now();
      (failed_lately ? later : *candidates).push_back(node);
    };
    for (const Endpoint& node : map_.KnownNodes()) add(node);
    for (const Endpoint& seed : options_.seeds) add(seed);
    candidates->insert(candidates->end(), later.begin(), later.end());
    TryRefresh(std::move(candidates), 0, std::make_shared<std::string>(), std::move(done));
  }

  void TryRefresh(std::shared_ptr<std::vector<Endpoint>> candidates, std::size_t index,
                  std::shared_ptr<std::string> errors, RefreshDone done) {
    if (stopping_) return;
    if (index == candidates->size()) {
      refreshing_ = false;
      if (done) done(*errors);
      AfterRefresh();
      return;
    }
    map_refreshes_.fetch_add(1, std::memory_order_relaxed);
    const Endpoint node = (*candidates)[index];
    auto request = std::make_shared<Request>();
    request->args = {"CLUSTER", "SLOTS"};
    request->pinned = node;
    // A stopped node must not hold the refresh for a whole command timeout.
    request->deadline = Clock::now() + std::min(options_.command_timeout, milliseconds(1000));
    request->done = [this, candidates, index, errors, done, node](CommandResult result) {
      if (stopping_) return;
      std::string error;
      if (result.ok()) {
        auto map = SlotMap::FromClusterSlots(*result, node.host);
        if (map.ok()) {
          map_ = std::move(*map);
          refreshing_ = false;
          if (done) done("");
          AfterRefresh();
          return;
        }
        error = map.error();
      } else {
        error = result.error().message;
      }
      if (!errors->empty()) *errors += "; ";
      *errors += Name(node) + ": " + error;
      TryRefresh(candidates, index + 1, errors, done);
    };
    Submit(request);
  }

  void AfterRefresh() {
    if (refresh_again_) {
      refresh_again_ = false;
      RequestRefresh();
    }
  }

  void Shutdown() {
    stopping_ = true;
    auto requests = std::move(by_deadline_);
    by_deadline_.clear();
    for (const auto& request : requests) {
      request->Finish(Failure{request->PendingFailure(), "the Redis client is closing"});
    }
    for (auto& [name, pair] : connections_) {
      if (pair.writes) pair.writes->Abandon();
      if (pair.reads) pair.reads->Abandon();
    }
    connections_.clear();
    deadline_timer_.cancel();
    throttle_timer_.cancel();
    periodic_timer_.cancel();
    work_.reset();
    // Handlers still queued (retry timers, aborted reads) are destroyed with the io_context,
    // never run: no callback after the destructor.
    io_.stop();
  }

  // io_ first: destroyed last, after everything that holds its sockets and timers.
  asio::io_context io_;
  ClientOptions options_;
  ConnectionLimits limits_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer throttle_timer_;
  asio::steady_timer periodic_timer_;
  std::deque<std::shared_ptr<Request>> by_deadline_;
  std::map<std::string, NodeConnections> connections_;
  std::map<std::string, Clock::time_point> down_until_;
  SlotMap map_;
  std::minstd_rand rng_;
  Clock::time_point last_refresh_{};
  bool deadline_armed_ = false;
  bool throttle_armed_ = false;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  std::atomic<bool> stopping_{false};
  std::mutex scripts_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> scripts_;
  std::atomic<std::uint64_t> moved_{0}, asked_{0}, retries_{0}, script_loads_{0}, map_refreshes_{0},
      connections_lost_{0};
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace

Result<std::unique_ptr<ClusterClient>, std::string> ClusterClient::Connect(ClientOptions options) {
  if (options.seeds.empty()) return std::string("no seed node given");
  if (options.command_timeout <= milliseconds(0)) {
    return std::string("the command timeout must be positive");
  }
  // WAIT 1 0 would block forever.
  if (options.replica_timeout <= milliseconds(0)) {
    return std::string("the replica timeout must be positive");
  }
  if (options.refresh_interval <= milliseconds(0)) {
    return std::string("the refresh interval must be positive");
  }
  auto client = std::make_unique<ClusterClientImpl>(std::move(options));
  if (std::string error = client->Start(); !error.empty()) {
    return "no seed node served the cluster's slot map: " + error;
  }
  return std::unique_ptr<ClusterClient>(std::move(client));
}

CommandResult ClusterClient::RunSync(std::string_view routing_key, std::vector<std::string> args,
                                     Durability durability) {
  if (OnCallbackThread()) {
    return Failure{FailureKind::kUnavailable, "RunSync called on the Redis client's own thread"};
  }
  auto promise = std::make_shared<std::promise<CommandResult>>();
  auto future = promise->get_future();
  Run(routing_key, std::move(args), durability,
      [promise](CommandResult result) { promise->set_value(std::move(result)); });
  return future.get();
}

CommandResult ClusterClient::RunScriptSync(const Script& script, std::vector<std::string> keys,
                                           std::vector<std::string> args, Durability durability) {
  if (OnCallbackThread()) {
    return Failure{FailureKind::kUnavailable, "RunScriptSync called on the Redis client's thread"};
  }
  auto promise = std::make_shared<std::promise<CommandResult>>();
  auto future = promise->get_future();
  RunScript(script, std::move(keys), std::move(args), durability,
            [promise](CommandResult result) { promise->set_value(std::move(result)); });
  return future.get();
}

}  // namespace callgate::redis

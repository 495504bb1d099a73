// ClusterControl: drives a real Redis Cluster from the failover tests by shelling out to
// redis-cli (redis-tools): the topology (node ids, roles, which master owns a slot or a key),
// CLUSTER FAILOVER, kill -9 and restart of a node with its own config, SIGSTOP/SIGCONT,
// resharding, and waiting for the cluster to be whole again (cluster_state:ok everywhere, 3
// masters with one synced replica each). No mocks: the cluster is the one
// scripts/redis-cluster.sh started. Every redis-cli runs under `timeout`, so a stopped node
// never hangs a test. Thread-compatible (one test thread drives it).
#pragma once

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace callgate::testing {

struct CommandOutput {
  int exit_code = -1;
  std::string out;  // standard output and standard error, interleaved
};

// Runs `command` through /bin/sh; its exit code and output.
inline CommandOutput RunCommand(const std::string& command) {
  CommandOutput result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char chunk[4096];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) result.out.append(chunk, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// One line of CLUSTER NODES.
struct ClusterNode {
  std::string id;
  int port = 0;
  bool master = false;
  std::string master_id;  // a replica's master; "-" for masters
  bool failing = false;   // fail or fail? flags: some node cannot reach it
  bool connected = false;
  std::vector<std::pair<int, int>> slots;  // ranges a master serves

  bool OwnsSlot(int slot) const {
    return std::any_of(slots.begin(), slots.end(),
                       [slot](const auto& r) { return r.first <= slot && slot <= r.second; });
  }
  int SlotCount() const {
    int n = 0;
    for (const auto& [first, last] : slots) n += last - first + 1;
    return n;
  }
};

// How a killed node is started again: the same binary, config file and working directory.
struct NodeLaunch {
  int port = 0;
  std::string executable;
  std::string config_file;
  std::string dir;
  std::chrono::steady_clock::time_point killed_at;
};

// Whether `pid` has exited: gone, or a zombie (a daemon's reaper may be slow, or absent).
inline bool Exited(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] == 'Z';
}

class ClusterControl {
 public:
  // `seeds`: "127.0.0.1:7400,127.0.0.1:7401,…", as scripts/redis-cluster.sh prints them. Every
  // node of the cluster must be among them (they are what Healthy() expects to find).
  explicit ClusterControl(const std::string& seeds) {
    std::stringstream in(seeds);
    std::string endpoint;
    while (std::getline(in, endpoint, ',')) {
      const auto colon = endpoint.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("seed " + endpoint);
      ports_.push_back(std::stoi(endpoint.substr(colon + 1)));
    }
    if (ports_.empty()) throw std::invalid_argument("no seeds");
  }

  const std::vector<int>& ports() const { return ports_; }

  // `redis-cli -p PORT args`, at most `seconds`; its output, trailing newline removed.
  CommandOutput Cli(int port, const std::string& args, int seconds = 5) const {
    CommandOutput result =
        RunCommand("timeout -s KILL " + std::to_string(seconds) + " redis-cli -h 127.0.0.1 -p " +
                   std::to_string(port) + " " + args);
    result.out = Trim(result.out);
    return result;
  }
  // A field of INFO (e.g. "role", "master_link_status"), or "" if the node does not answer.
  std::string Info(int port, const std::string& field) const {
    const CommandOutput info = Cli(port, "INFO", 3);
    std::stringstream in(info.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0) return Trim(line.substr(field.size() + 1));
    }
    return "";
  }

  // The cluster as `port` sees it (empty if it does not answer).
  std::vector<ClusterNode> Nodes(int port) const {
    std::vector<ClusterNode> nodes;
    const CommandOutput listing = Cli(port, "CLUSTER NODES", 3);
    if (listing.exit_code != 0) return nodes;
    std::stringstream in(listing.out);
    std::string line;
    while (std::getline(in, line)) {
      std::stringstream fields(line);
      ClusterNode node;
      std::string address, flags, ping, pong, epoch, link;
      if (!(fields >> node.id >> address >> flags >> node.master_id >> ping >> pong >> epoch >>
            link)) {
        continue;
      }
      const auto colon = address.rfind(':');
      const auto at = address.find('@');
      if (colon == std::string::npos) continue;
      node.port = std::atoi(address.substr(colon + 1, at - colon - 1).c_str());
      std::stringstream flag_list(flags);
      for (std::string flag; std::getline(flag_list, flag, ',');) {
        node.master |= flag == "master";
        node.failing |= flag == "fail" || flag == "fail?";  // not "nofailover"
      }
      node.connected = link == "connected";
      std::string range;
      while (fields >> range) {
        if (range.front() == '[') continue;  // a slot being imported or migrated
        const auto dash = range.find('-');
        const int first = std::atoi(range.substr(0, dash).c_str());
        const int last =
            dash == std::string::npos ? first : std::atoi(range.substr(dash + 1).c_str());
        node.slots.emplace_back(first, last);
      }
      nodes.push_back(std::move(node));
    }
    return nodes;
  }
  // The cluster as the first answering node sees it.
  std::vector<ClusterNode> Nodes() const {
    for (const int port : ports_) {
      auto nodes = Nodes(port);
      if (!nodes.empty()) return nodes;
    }
    return {};
  }
  std::vector<ClusterNode> Masters() const {
    std::vector<ClusterNode> masters;
    for (ClusterNode& node : Nodes()) {
      if (node.master && !node.failing && !node.slots.empty()) masters.push_back(std::move(node));
    }
    std::sort(masters.begin(), masters.end(),
              [](const auto& a, const auto& b) { return a.port < b.port; });
    return masters;
  }
  // The replica of `master_id` (the first, if several).
  std::optional<ClusterNode> ReplicaOf(const std::string& master_id) const {
    for (ClusterNode& node : Nodes()) {
      if (!node.master && node.master_id == master_id && !node.failing) return node;
    }
    return std::nullopt;
  }
  int KeySlot(const std::string& key) const {
    return std::atoi(Cli(ports_[0], "CLUSTER KEYSLOT '" + key + "'").out.c_str());
  }
  // The master serving `slot`.
  std::optional<ClusterNode> OwnerOfSlot(int slot) const {
    for (ClusterNode& node : Masters()) {
      if (node.OwnsSlot(slot)) return node;
    }
    return std::nullopt;
  }
  std::chrono::milliseconds NodeTimeout() const {
    const CommandOutput out = Cli(ports_[0], "CONFIG GET cluster-node-timeout");
    return std::chrono::milliseconds(std::atoi(out.out.substr(out.out.find('\n') + 1).c_str()));
  }
  pid_t Pid(int port) const { return std::atoi(Info(port, "process_id").c_str()); }

  // CLUSTER FAILOVER on a replica (coordinated with its master: no acknowledged write lost);
  // true once it serves as a master.
  bool Failover(int replica_port, std::chrono::milliseconds timeout) const {
    if (Cli(replica_port, "CLUSTER FAILOVER").out != "OK") return false;
    return WaitFor(timeout, [&] { return Info(replica_port, "role") == "master"; });
  }

  // kill -9 of the node on `port`; what it takes to start it again.
  NodeLaunch Kill(int port) const {
    const pid_t pid = Pid(port);
    if (pid <= 0) throw std::runtime_error("no redis-server on port " + std::to_string(port));
    // Not INFO's `executable` (the cwd and argv[0] joined, wrong when PATH found it) nor
    // /proc/PID/exe (Debian's redis-server is a link to redis-check-rdb, which acts on argv[0]).
    NodeLaunch launch{.port = port, .executable = "redis-server"};
    launch.config_file = Info(port, "config_file");
    launch.dir = Trim(Cli(port, "CONFIG GET dir").out.substr(4));
    if (launch.config_file.empty()) throw std::runtime_error("node without a config file");
    ::kill(pid, SIGKILL);
    launch.killed_at = std::chrono::steady_clock::now();
    WaitFor(std::chrono::seconds(5), [&] { return Exited(pid); });
    return launch;
  }
  // Starts a killed node again with its own config: it rejoins the cluster (as a replica when
  // its slots were taken over meanwhile). Daemonised, so it outlives the test like its peers.
  bool Restart(const NodeLaunch& launch) const {
    const CommandOutput out = RunCommand("cd '" + launch.dir + "' && '" + launch.executable +
                                         "' '" + launch.config_file + "' --daemonize yes");
    if (out.exit_code != 0) return false;
    return WaitFor(std::chrono::seconds(10),
                   [&] { return Cli(launch.port, "PING", 1).out == "PONG"; });
  }

  void Signal(int port, int signal) const {
    const pid_t pid = Pid(port);
    if (pid > 0) ::kill(pid, signal);
  }
  // SIGSTOP needs the pid while the node still answers; SIGCONT after it stopped answering.
  pid_t Stop(int port) const {
    const pid_t pid = Pid(port);
    if (pid > 0) ::kill(pid, SIGSTOP);
    return pid;
  }

  // Moves `slots` slots from one master to another, keys included (MIGRATE: ASK redirections
  // meanwhile); redis-cli's output on failure.
  CommandOutput Reshard(const std::string& from_id, const std::string& to_id, int slots) const {
    return RunCommand("timeout -s KILL 60 redis-cli --cluster reshard 127.0.0.1:" +
                      std::to_string(ports_[0]) + " --cluster-from " + from_id + " --cluster-to " +
                      to_id + " --cluster-slots " + std::to_string(slots) + " --cluster-yes");
  }

  // Whole again: every node answers and reports cluster_state:ok, every node agrees on 3 masters
  // covering the 16384 slots with exactly one replica each, no node flagged failing, and every
  // replica's link to its master up and synced. "" if so, else what is not.
  std::string Unhealthy() const {
    for (const int port : ports_) {
      const CommandOutput info = Cli(port, "CLUSTER INFO", 2);
      if (info.out.find("cluster_state:ok") == std::string::npos) {
        return std::to_string(port) + " is not ok: " + info.out.substr(0, 40);
      }
    }
    for (const int port : ports_) {
      const std::vector<ClusterNode> nodes = Nodes(port);
      if (nodes.size() != ports_.size()) return std::to_string(port) + " sees the wrong nodes";
      int masters = 0, slots = 0;
      for (const ClusterNode& node : nodes) {
        if (node.failing)
          return std::to_string(port) + " sees " + std::to_string(node.port) + " failing";
        if (!node.master) continue;
        ++masters;
        slots += node.SlotCount();
        const auto replicas = std::count_if(nodes.begin(), nodes.end(), [&](const auto& n) {
          return !n.master && n.master_id == node.id;
        });
        if (replicas != 1)
          return std::to_string(node.port) + " has " + std::to_string(replicas) + " replicas";
      }
      if (masters != 3 || slots != 16384) return std::to_string(port) + " sees a partial map";
    }
    for (const int port : ports_) {
      if (Info(port, "role") == "slave" && (Info(port, "master_link_status") != "up" ||
                                            Info(port, "master_sync_in_progress") != "0")) {
        return std::to_string(port) + " is not in sync with its master";
      }
    }
    return "";
  }
  // Waits until Unhealthy() says nothing; what was still wrong if it times out.
  std::string WaitHealthy(std::chrono::milliseconds timeout) const {
    std::string wrong;
    WaitFor(timeout, [&] { return (wrong = Unhealthy()).empty(); });
    return wrong;
  }

  // Polls `done` every 50 ms until it holds or `timeout` passes (polling the cluster's state,
  // not waiting for time to pass).
  template <typename Done>
  static bool WaitFor(std::chrono::milliseconds timeout, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  std::vector<int> ports_;
};

}  // namespace callgate::testing

// Two real `callgate serve` processes on one data directory: enforcement must hold across
// processes (SQLite's write lock serialises their pair updates), so concurrent reservations and
// call authorisations split between both never exceed a limit. Tenants come from the admin CLI,
// the permission from a signed webhook to one process. Both stop cleanly on SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>

#include "meta_payloads.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

constexpr char kBinary[] = CALLGATE_BINARY;
constexpr char kSecret[] = "s";
const meta::Business kBiz{"106540352242922", "15550783881"};
const meta::Business kBizSb{"106540352242924", "15550783883"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ChannelPath(const std::string& channel) {
  return "/api/v1/whatsapp/subaccounts/sub-mp/channels/" + channel;
}

// A child process running the callgate binary. Its stdout is a pipe we read from; its stderr
// goes to a file, shown if a test fails. It dies with the test process (PR_SET_PDEATHSIG).
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& stderr_path) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> argv_storage{kBinary};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out[1], STDOUT_FILENO);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    if (err >= 0) ::close(err);
    out_ = out[0];
  }
  ~Child() {
    Kill(SIGKILL);
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of the child's stdout, or nullopt at EOF or after `timeout`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd pfd{out_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  // Everything the child wrote to stdout until it closed it.
  std::string ReadAll() {
    std::string all = buffer_;
    buffer_.clear();
    char chunk[512];
    ssize_t n;
    while ((n = ::read(out_, chunk, sizeof chunk)) > 0) all.append(chunk, n);
    return all;
  }

  // Waits for the child to exit; its wait status, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    if (exited_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const pid_t done = ::waitpid(pid_, &status_, WNOHANG);
      if (done == pid_) {
        exited_ = true;
        return status_;
      }
      if (done < 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      // Polling a child's exit, not waiting for time to pass in the service.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void Kill(int signal) {
    if (exited_ || pid_ <= 0) return;
    ::kill(pid_, signal);
    if (signal == SIGKILL) Wait(std::chrono::seconds(10));
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
  bool exited_ = false;
  int status_ = 0;
};

class MultiprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/callgate-mp-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    data_dir_ = dir_ + "/data";

    Admin({"account", "create", "acct-mp"});
    Admin({"subaccount", "create", "sub-mp", "--account", "acct-mp"});
    Admin({"channel", "create", "chan-mp", "--subaccount", "sub-mp", "--phone-number-id",
           kBiz.phone_number_id});
    Admin({"channel", "create", "chan-mp-sb", "--subaccount", "sub-mp", "--phone-number-id",
           kBizSb.phone_number_id, "--limits", "sandbox"});
    std::string key = Admin({"key", "create", "--account", "acct-mp"});
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    ASSERT_EQ(key.rfind("cgk_", 0), 0u) << key;
    key_ = key;

    for (int i = 0; i < 2; ++i) {
      const std::string log = dir_ + "/serve-" + std::to_string(i) + ".log";
      servers_.push_back(std::make_unique<Child>(
          std::vector<std::string>{"serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir_,
                                   "--threads", "2", "--meta-app-secret", kSecret, "--log-format",
                                   "json", "--access-log", "on"},
          log));
      logs_.push_back(log);
      const auto line = servers_.back()->ReadLine(std::chrono::seconds(20));
      ASSERT_TRUE(line) << "server " << i << " did not report its address\n" << Logs();
      constexpr std::string_view kPrefix = "callgate listening on http://";
      ASSERT_EQ(line->rfind(kPrefix, 0), 0u) << *line;
      const std::string address = line->substr(kPrefix.size());
      ports_.push_back(
          static_cast<unsigned short>(std::stoi(address.substr(address.rfind(':') + 1))));
    }
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << Logs();
    servers_.clear();  // SIGKILL whatever is still running
    // The servers' logs join the e2e run's, for the log check (tests/logs/log_check.mjs).
    if (const char* e2e_log = std::getenv("CALLGATE_E2E_LOG")) {
      std::ofstream out(e2e_log, std::ios::app);
      for (const std::string& log : logs_) out << ReadFile(log);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs `callgate admin --data-dir DIR args...` to completion; its stdout.
  std::string Admin(std::vector<std::string> args) {
    args.insert(args.begin(), {"admin", "--data-dir", data_dir_});
    Child admin(args, dir_ + "/admin.log");
    std::string out = admin.ReadAll();
    const auto status = admin.Wait(std::chrono::seconds(20));
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "admin " << args[3] << " " << args[4] << " failed\n"
        << ReadFile(dir_ + "/admin.log");
    return out;
  }

  std::string Logs() const {
    std::ostringstream out;
    for (const std::string& log : logs_) {
      out << "--- " << log << "\n" << ReadFile(log) << "\n";
    }
    return out.str();
  }

  std::map<std::string, std::string> Auth() const { return {{"Authorization", "Bearer " + key_}}; }

  std::string StatusBody(unsigned short port, const std::string& channel, const std::string& user) {
    HttpClient client(port);
    const Reply reply =
        client.Get(ChannelPath(channel) + "/callPermissions?destination=%2B" + user, Auth());
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.body;
  }

  // Counts replies by "status/code" (code 0 for non-errors).
  std::map<std::string, int> Tally(const std::vector<Reply>& replies) {
    std::map<std::string, int> tally;
    for (const Reply& reply : replies) {
      std::string key = std::to_string(reply.status);
      if (reply.status >= 400) {
        simdjson::dom::parser parser;
        std::int64_t code = 0;
        if (parser.parse(reply.body)["code"].get(code) != simdjson::SUCCESS) code = -1;
        key += "/" + std::to_string(code);
      } else if (reply.status < 0) {
        key += " " + reply.body;
      }
      ++tally[key];
    }
    return tally;
  }

  std::string dir_;
  std::string data_dir_;
  std::string key_;
  std::vector<std::unique_ptr<Child>> servers_;
  std::vector<std::string> logs_;
  std::vector<unsigned short> ports_;
};

TEST_F(MultiprocessTest, TwoProcessesOnOneDataDirectoryNeverExceedALimit) {
  const std::string user = "6591000001";
  const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());

  // A permanent permission, delivered to the first process, is seen by the second.
  {
    meta::PermissionReply grant{.wamid = "wamid.mp-grant", .from = user, .at = now};
    grant.is_permanent = true;
    HttpClient client(ports_[0]);
    const Reply reply = client.PostWebhook(meta::Payload(kBiz, grant), kSecret);
    ASSERT_EQ(reply.status, 200) << reply.body;
    ASSERT_NE(reply.body.find(R"("applied":1)"), std::string::npos) << reply.body;
  }
  // Both processes read (and cache) the pair before the other's writes; the reads after them
  // prove each process's cache sees the other's commits.
  for (const unsigned short port : ports_) {
    ASSERT_NE(StatusBody(port, "chan-mp", user).find(R"("status":"permanent")"), std::string::npos);
  }

  // 200 call authorisations, 8 connections per process, all at once: exactly 100 succeed.
  const std::vector<Reply> calls =
      FireConcurrently(ports_, 8, 200, ChannelPath("chan-mp") + "/calls", Auth(),
                       R"({"destination":"+)" + user + R"("})");
  EXPECT_EQ(Tally(calls), (std::map<std::string, int>{{"201", 100}, {"429/1056", 100}}));
  for (const unsigned short port : ports_) {
    EXPECT_NE(StatusBody(port, "chan-mp", user)
                  .find(R"("timePeriod":"PT24H","maxAllowed":100,"currentUsage":100,)"),
              std::string::npos);
  }

  // 200 permission requests on a sandbox channel: exactly 25 (the daily sandbox limit).
  const std::vector<Reply> requests =
      FireConcurrently(ports_, 8, 200, ChannelPath("chan-mp-sb") + "/callPermissionRequests",
                       Auth(), R"({"destination":"+)" + user + R"("})");
  EXPECT_EQ(Tally(requests), (std::map<std::string, int>{{"201", 25}, {"429/1053", 175}}));
  EXPECT_NE(StatusBody(ports_[0], "chan-mp-sb", user)
                .find(R"("timePeriod":"PT24H","maxAllowed":25,"currentUsage":25,)"),
            std::string::npos);

  // Both stop cleanly on SIGTERM.
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i]->Kill(SIGTERM);
    const auto status = servers_[i]->Wait(std::chrono::seconds(20));
    ASSERT_TRUE(status) << "server " << i << " did not stop on SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "server " << i << " wait status " << *status;
  }
}

}  // namespace
}  // namespace callgate::testing

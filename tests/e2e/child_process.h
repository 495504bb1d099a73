// Child: a real `callgate` binary run as a child process by the multi-process tests (its stdout
// a pipe read line by line, its stderr a file), killed with the test process (PR_SET_PDEATHSIG)
// or when the Child goes; and ReadFile, for the logs it leaves. Thread-compatible.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace callgate::testing {

constexpr char kBinary[] = CALLGATE_BINARY;

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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

// Runs `callgate args...` (an admin command) to completion, its stderr in `log`; its stdout. A
// failure (no exit, or a non-zero status) fails the test, showing the log.
inline std::string RunToCompletion(const std::vector<std::string>& args, const std::string& log) {
  Child child(args, log);
  std::string out = child.ReadAll();
  const auto status = child.Wait(std::chrono::seconds(20));
  EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "callgate " << (args.size() > 2 ? args[0] + " … " + args[args.size() - 2] : args[0])
      << " failed\n"
      << ReadFile(log);
  return out;
}

}  // namespace callgate::testing

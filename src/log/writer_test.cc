#include "log/writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace callgate {
namespace {

// A pipe whose read end a thread drains into `read` once Drain() is called.
class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    read_fd_ = fds[0];
    write_fd_ = fds[1];
  }
  ~Pipe() {
    CloseWriteEnd();
    if (reader_.joinable()) reader_.join();
    ::close(read_fd_);
  }
  int write_fd() const { return write_fd_; }

  // Reads `size` bytes, or what came within `timeout`.
  std::string Read(std::size_t size, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string got;
    while (got.size() < size) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{read_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      const ssize_t n = ::read(read_fd_, buf, std::min(sizeof buf, size - got.size()));
      if (n <= 0) break;
      got.append(buf, n);
    }
    return got;
  }

  // Fills the pipe's buffer, so the next write blocks until Drain.
  std::size_t Fill() {
    const int flags = ::fcntl(write_fd_, F_GETFL);
    ::fcntl(write_fd_, F_SETFL, flags | O_NONBLOCK);
    const std::string block(4096, 'x');
    std::size_t filled = 0;
    for (ssize_t n; (n = ::write(write_fd_, block.data(), block.size())) > 0;) filled += n;
    for (ssize_t n; (n = ::write(write_fd_, "x", 1)) > 0;) filled += n;  // the last page's room
    ::fcntl(write_fd_, F_SETFL, flags);
    return filled;
  }
  void Drain() {
    reader_ = std::thread([this] {
      char buf[65536];
      for (ssize_t n; (n = ::read(read_fd_, buf, sizeof buf)) > 0;) read_.append(buf, n);
    });
  }
  // Everything written, once the write end is closed.
  std::string Close() {
    CloseWriteEnd();
    if (reader_.joinable()) reader_.join();
    return read_;
  }

 private:
  void CloseWriteEnd() {
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
  }
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::thread reader_;
  std::string read_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(LogWriterTest, LinesOfManyThreadsNeverMixAndNoneIsLost) {
  Pipe pipe;
  pipe.Drain();
  {
    LogWriter writer({.fd = pipe.write_fd(), .batch_bytes = 4096});
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&writer, t] {
        // Long lines, so a batch is many writes' worth of a pipe's atomic size.
        const std::string body(300 + 37 * t, static_cast<char>('a' + t));
        for (int i = 0; i < 500; ++i) {
          const std::string line = std::to_string(t) + " " + std::to_string(i) + " " + body + "\n";
          if (i % 50 == 0) {
            writer.Write(line);
          } else {
            writer.Queue(line);
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }  // the destructor writes what is queued
  std::map<int, std::vector<int>> seen;
  for (const std::string& line : Lines(pipe.Close())) {
    int t = -1, i = -1;
    std::istringstream fields(line);
    std::string body;
    fields >> t >> i >> body;
    ASSERT_TRUE(t >= 0 && t < 8) << line.substr(0, 40);
    EXPECT_EQ(body, std::string(300 + 37 * t, static_cast<char>('a' + t)));
    seen[t].push_back(i);
  }
  for (int t = 0; t < 8; ++t) {
    std::vector<int> expected(500);
    for (int i = 0; i < 500; ++i) expected[i] = i;
    EXPECT_EQ(seen[t], expected) << "thread " << t << ": lost, doubled or reordered";
  }
}

TEST(LogWriterTest, QueuedLinesAreWrittenByTheBackgroundThreadWithoutAFlush) {
  Pipe pipe;
  LogWriter writer({.fd = pipe.write_fd(), .interval = std::chrono::milliseconds(10)});
  writer.Queue("queued 1\n");
  writer.Queue("queued 2\n");
  EXPECT_EQ(pipe.Read(18, std::chrono::seconds(5)), "queued 1\nqueued 2\n");
}

TEST(LogWriterTest, ALineWrittenAtOnceFollowsTheQueuedOnes) {
  Pipe pipe;
  LogWriter writer({.fd = pipe.write_fd(), .interval = std::chrono::hours(1)});
  writer.Queue("queued\n");
  writer.Write("now\n");
  EXPECT_EQ(pipe.Read(11, std::chrono::seconds(5)), "queued\nnow\n");
}

// A reader that stops reading (a full pipe) must not stall the lines' writers: what does not fit
// the queue is dropped, and the next batch says how many.
TEST(LogWriterTest, WhenTheReaderStallsQueuedLinesAreDroppedCountedAndSaid) {
  Pipe pipe;
  const std::size_t junk = pipe.Fill();
  const std::string line = "an access line of some forty bytes....\n";
  constexpr int kLines = 2000;
  {
    LogWriter writer({.fd = pipe.write_fd(),
                      .format = LogFormat::kJson,
                      .queue_bytes = 100 * line.size(),
                      .batch_bytes = 10 * line.size(),
                      .interval = std::chrono::milliseconds(1)});
    // The background thread is blocked writing into the full pipe: Queue must return anyway.
    for (int i = 0; i < kLines; ++i) writer.Queue(line);
    pipe.Drain();
  }
  const std::string out = pipe.Close().substr(junk);
  int written = 0;
  int said = 0;
  std::int64_t dropped = 0;
  const std::regex dropped_line(
      R"(^\{"time":"[^"]+","level":"warn","msg":"access lines dropped: [^"]+","dropped":(\d+)\}$)");
  for (const std::string& l : Lines(out)) {
    std::smatch m;
    if (std::regex_match(l, m, dropped_line)) {
      ++said;
      dropped += std::stoll(m[1]);
    } else {
      EXPECT_EQ(l + "\n", line);
      ++written;
    }
  }
  // Said once or twice: with the batch the stalled write took, and the first batch after it.
  EXPECT_GE(said, 1);
  EXPECT_LE(said, 2);
  EXPECT_LE(written, 2 * 100);  // the stalled batch and one full queue
  EXPECT_EQ(written + dropped, kLines);
}

}  // namespace
}  // namespace callgate

// LogWriter: writes whole log lines to a file descriptor (standard error), never two lines mixed
// however many threads write, in two ways:
//   Write: at once, before returning (after whatever is queued, so lines keep their order): for
//     the rare lines (start, stop, notices, throttled errors) that must be out even if the
//     process dies next.
//   Queue: for the access log's one line per request, which must cost the request little and
//     never wait for a slow reader of standard error. The line is appended to a bounded buffer
//     that a background thread (started by the first Queue) writes out in batches, at most
//     `interval` after a line was queued or as soon as `batch_bytes` are waiting. When the buffer
//     already holds `queue_bytes`, the line is dropped and counted, and the next batch written
//     ends with a warn line saying how many were dropped: a stalled log loses lines, says so, and
//     never stalls the service.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "log/format.h"

namespace callgate {

class LogWriter {
 public:
  struct Options {
    int fd = 2;                                      // standard error
    LogFormat format = LogFormat::kText;             // of the line counting dropped lines
    std::size_t queue_bytes = std::size_t{4} << 20;  // queued lines beyond this are dropped
    std::size_t batch_bytes = std::size_t{64} << 10;
    std::chrono::milliseconds interval{50};
  };

  explicit LogWriter(Options options);
  ~LogWriter();  // stops the background thread and writes what is queued
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void Configure(int fd, LogFormat format);
  LogFormat format() const { return format_.load(std::memory_order_relaxed); }

  // Writes `lines` (whole lines) now, after what is queued.
  void Write(std::string_view lines);
  // Queues `line` (a whole line) for the background thread; drops it, counted, if the queue is
  // full.
  void Queue(std::string_view line);
  // Writes what is queued, now.
  void Flush() { Write({}); }

 private:
  void Run();  // the background thread

  std::atomic<LogFormat> format_;
  std::size_t queue_bytes_;
  std::size_t batch_bytes_;
  std::chrono::milliseconds interval_;

  // out_mu_ is held while writing, so lines of different batches never mix and batches go out in
  // the order they were taken from the queue; it is taken before queue_mu_, never after.
  std::mutex out_mu_;
  int fd_;             // guarded by out_mu_
  std::string spare_;  // guarded by out_mu_: the buffer the queue is swapped with

  std::mutex queue_mu_;
  std::condition_variable wake_;
  std::string queue_;          // guarded by queue_mu_
  std::uint64_t dropped_ = 0;  // guarded by queue_mu_: since the last batch written
  bool idle_ = false;          // guarded by queue_mu_: the thread waits for a first line
  bool stop_ = false;          // guarded by queue_mu_
  std::thread thread_;         // started by the first Queue
};

}  // namespace callgate

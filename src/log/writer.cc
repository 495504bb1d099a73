#include "log/writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "log/log.h"

namespace callgate {

namespace {

// Writes all of `bytes`; gives up if the descriptor fails (there is nowhere to say so).
void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

LogWriter::LogWriter(Options options)
    : format_(options.format),
      queue_bytes_(options.queue_bytes),
      batch_bytes_(std::min(options.batch_bytes, options.queue_bytes)),
      interval_(options.interval),
      fd_(options.fd) {}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(queue_mu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  Flush();
}

void LogWriter::Configure(int fd, LogFormat format) {
  format_.store(format, std::memory_order_relaxed);
  std::lock_guard lock(out_mu_);
  fd_ = fd;
}

void LogWriter::Write(std::string_view lines) {
  std::lock_guard out(out_mu_);
  std::uint64_t dropped = 0;
  {
    std::lock_guard lock(queue_mu_);
    queue_.swap(spare_);  // spare_ was empty, with the capacity of an earlier batch
    dropped = std::exchange(dropped_, 0);
  }
  if (dropped > 0) {
    const LogField count("dropped", static_cast<std::int64_t>(dropped));
    AppendLogLine(format(),
                  {LogNow(),
                   LogLevel::kWarn,
                   "access lines dropped: standard error did not keep up",
                   {&count, 1}},
                  spare_);
  }
  spare_.append(lines);
  WriteAll(fd_, spare_);
  spare_.clear();
}

void LogWriter::Queue(std::string_view line) {
  bool wake = false;
  {
    std::lock_guard lock(queue_mu_);
    if (queue_.size() + line.size() > queue_bytes_) {
      ++dropped_;
      return;
    }
    // Wake the thread only when it waits for a first line or a batch is full: once per batch,
    // not once per line.
    wake = (idle_ && queue_.empty()) ||
           (queue_.size() < batch_bytes_ && queue_.size() + line.size() >= batch_bytes_);
    queue_.append(line);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  if (wake) wake_.notify_one();
}

void LogWriter::Run() {
  std::unique_lock lock(queue_mu_);
  while (!stop_) {
    idle_ = true;
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    idle_ = false;
    // Let a batch gather: one write for many lines.
    wake_.wait_for(lock, interval_, [&] { return stop_ || queue_.size() >= batch_bytes_; });
    lock.unlock();
    Flush();
    lock.lock();
  }
}

}  // namespace callgate

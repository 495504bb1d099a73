// callgate_bench_fsync: the hardware reference of the write benchmark — how many durable
// commits one thread can make per second on a filesystem if each commit is one write followed
// by one fdatasync, the way SQLite commits a WAL transaction with synchronous=FULL.
//
//   callgate_bench_fsync --dir DIR [--seconds S] [--block BYTES]
//
// Two patterns, S/2 seconds each: overwriting 4 KiB blocks in turn in a preallocated 4 MiB
// file (a WAL being reused after a checkpoint) and appending to a growing file (a WAL growing,
// which also makes fdatasync flush the size). Prints JSON with both rates; the benchmark takes
// the faster as "the single-fsync rate", which is the conservative reference.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Returns commits per second, or a negative number on an I/O error.
double Measure(const std::string& path, double seconds, std::size_t block, bool append) {
  constexpr std::size_t kFileBytes = 4 << 20;
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | (append ? O_APPEND : 0), 0600);
  if (fd < 0) return -1;
  std::vector<char> data(block, 'w');
  if (!append) {
    for (std::size_t off = 0; off < kFileBytes; off += block) {
      if (::pwrite(fd, data.data(), block, static_cast<off_t>(off)) !=
          static_cast<ssize_t>(block)) {
        ::close(fd);
        return -1;
      }
    }
    if (::fsync(fd) != 0) return -1;
  }
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  long commits = 0;
  std::size_t offset = 0;
  while (Clock::now() < end) {
    data[0] = static_cast<char>(commits);
    const ssize_t n = append ? ::write(fd, data.data(), block)
                             : ::pwrite(fd, data.data(), block, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(block) || ::fdatasync(fd) != 0) {
      ::close(fd);
      return -1;
    }
    offset = (offset + block) % kFileBytes;
    ++commits;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  ::unlink(path.c_str());
  return static_cast<double>(commits) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  double seconds = 3;
  std::size_t block = 4096;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--dir") dir = argv[i + 1];
    if (name == "--seconds") seconds = std::stod(argv[i + 1]);
    if (name == "--block") block = std::stoul(argv[i + 1]);
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: callgate_bench_fsync --dir DIR [--seconds S] [--block BYTES]\n");
    return 2;
  }
  const std::string path = dir + "/fsync-probe.bin";
  const double overwrite = Measure(path, seconds / 2, block, false);
  const double append = Measure(path, seconds / 2, block, true);
  if (overwrite < 0 || append < 0) {
    std::fprintf(stderr, "fsync: I/O error on %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::printf("{\"overwrite_per_s\":%.1f,\"append_per_s\":%.1f,\"fsync_per_s\":%.1f}\n", overwrite,
              append, overwrite > append ? overwrite : append);
  return 0;
}

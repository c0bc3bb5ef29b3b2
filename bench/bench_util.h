// Shared set-up for the micro-benchmarks: an executor group, a data
// directory in the build tree (bench-data, on the real filesystem), and a
// preallocated, zero-filled file like a dmalog segment.
#pragma once

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "dmalog/status.h"
#include "scheduler/executor_group.h"

namespace dmalog::bench {

inline std::string BenchDir() {
  const std::string dir = DMALOG_BENCH_DATA_DIR;
  std::filesystem::create_directories(dir);
  return dir;
}

// Writes `bytes` of zeros to `path` with buffered I/O and fsyncs it, so the
// extents are written (not unwritten) when the benchmark starts.
inline bool ZeroFilledFile(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  static char zeros[1 << 20];
  bool ok = true;
  for (uint64_t off = 0; off < bytes && ok; off += sizeof(zeros)) {
    ok = ::pwrite(fd, zeros, sizeof(zeros), static_cast<off_t>(off)) ==
         static_cast<ssize_t>(sizeof(zeros));
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Starts `shards` executors pinned to CPUs 0..shards-1 (when the machine has
// them), or reports the error and returns null.
inline std::unique_ptr<sched::ExecutorGroup> StartGroup(benchmark::State& state, uint32_t shards,
                                                        bool pin = true) {
  sched::GroupOptions options;
  options.shards = shards;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (uint32_t i = 0; pin && i < shards && i < static_cast<uint32_t>(cpus); ++i) {
    options.cpus.push_back(static_cast<int>(i));
  }
  if (options.cpus.size() != shards) options.cpus.clear();
  options.executor.backend.ring_depth = 256;
  Result<std::unique_ptr<sched::ExecutorGroup>> group = sched::ExecutorGroup::Start(options);
  if (!group.ok()) {
    state.SkipWithError(group.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*group);
}

struct FreeDeleter {
  void operator()(uint8_t* p) const noexcept { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;
inline AlignedBuffer AllocateAligned(size_t bytes, uint8_t fill) {
  AlignedBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(4096, bytes)));
  std::memset(buf.get(), fill, bytes);
  return buf;
}

}  // namespace dmalog::bench

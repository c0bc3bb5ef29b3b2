// 4 KiB O_DIRECT write + fdatasync, one at a time, on a zero-filled file:
//   ring_linked:   one submission, the write linked to an fdatasync (what a
//                  dmalog group commit does);
//   ring_separate: the write, then the fdatasync, two round trips;
//   ring_dsync:    one write with RWF_DSYNC (durable when it completes);
//   pwrite:        pwrite(2) then fdatasync(2) on the calling thread.
// The figure is the time per durable write (sec_per_op, e.g. 45u = 45 us), which is bounded
// by the device's flush latency; compare with
//   fio --directory=build/bench-data fio-profiles/write-fdatasync-4k-qd1.fio
#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "bench/bench_util.h"
#include "io/dma_file.h"
#include "scheduler/submit.h"

namespace dmalog::bench {
namespace {

constexpr uint64_t kFileBytes = 64ull << 20;
constexpr uint32_t kWriteBytes = 4096;
constexpr int kOpsPerIteration = 32;

enum class Mode { kLinked, kSeparate, kDsync };

// Runs kOpsPerIteration durable writes on the executor; returns seconds.
Task<double> DurableWrites(const io::DmaFile* file, uint8_t* buf, uint64_t* offset, Mode mode) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kOpsPerIteration; ++i) {
    Status s;
    if (mode == Mode::kLinked) {
      s = co_await file->WriteDurable(buf, kWriteBytes, *offset);
    } else if (mode == Mode::kDsync) {
      s = co_await file->WriteDsync(buf, kWriteBytes, *offset);
    } else {
      s = co_await file->Write(buf, kWriteBytes, *offset);
      if (s.ok()) s = co_await file->Fdatasync();
    }
    if (!s.ok()) co_return -1.0;
    *offset = (*offset + kWriteBytes) % kFileBytes;
  }
  co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void RingWrites(benchmark::State& state, Mode mode) {
  const std::string path = BenchDir() + "/io_write_bench.ring";
  if (!ZeroFilledFile(path, kFileBytes)) return state.SkipWithError("cannot create the file");
  auto group = StartGroup(state, 1);
  if (!group) return;
  io::DmaFileOptions fo;
  Result<io::DmaFile> file = io::DmaFile::Open(path, fo);
  if (!file.ok()) return state.SkipWithError(file.status().ToString().c_str());
  AlignedBuffer buf = AllocateAligned(kWriteBytes, 0xab);
  uint64_t offset = 0;
  const io::DmaFile* f = &*file;
  uint8_t* b = buf.get();
  uint64_t* off = &offset;
  for (auto _ : state) {
    Result<double> seconds =
        group->submit_to(0, [f, b, off, mode] { return DurableWrites(f, b, off, mode); }).get();
    if (!seconds.ok() || *seconds < 0) return state.SkipWithError("write failed");
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(state.iterations() * kOpsPerIteration);
  state.counters["sec_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kOpsPerIteration),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  group->Stop();
  (void)file->Close();
}

void BM_RingLinkedWriteFdatasync(benchmark::State& state) { RingWrites(state, Mode::kLinked); }
void BM_RingSeparateWriteFdatasync(benchmark::State& state) { RingWrites(state, Mode::kSeparate); }
void BM_RingWriteDsync(benchmark::State& state) { RingWrites(state, Mode::kDsync); }

void BM_PwriteFdatasync(benchmark::State& state) {
  const std::string path = BenchDir() + "/io_write_bench.pwrite";
  if (!ZeroFilledFile(path, kFileBytes)) return state.SkipWithError("cannot create the file");
  const int fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return state.SkipWithError("open O_DIRECT failed");
  AlignedBuffer buf = AllocateAligned(kWriteBytes, 0xcd);
  uint64_t offset = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kOpsPerIteration; ++i) {
      if (::pwrite(fd, buf.get(), kWriteBytes, static_cast<off_t>(offset)) != kWriteBytes ||
          ::fdatasync(fd) != 0) {
        ::close(fd);
        return state.SkipWithError("pwrite/fdatasync failed");
      }
      offset = (offset + kWriteBytes) % kFileBytes;
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * kOpsPerIteration);
  state.counters["sec_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kOpsPerIteration),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  ::close(fd);
}

// Durable-write latency moves with the device's cache flushes: several
// repetitions and their medians are the figure to read.
BENCHMARK(BM_RingLinkedWriteFdatasync)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RingSeparateWriteFdatasync)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RingWriteDsync)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PwriteFdatasync)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

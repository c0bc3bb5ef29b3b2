// I/O shares under a saturating load, on one pinned executor: a foreground
// class (shares 800, Latency::Matters) issues 4 KiB O_DIRECT writes from many
// tasks while a compaction class (shares 100) issues 1 MiB writes. Both are
// backlogged, so the dispatcher orders submissions by cost per share.
// Figures: fg_cost_fraction (foreground's fraction of the dispatched cost;
// 800/(800+100) = 0.889 is the share ratio), foreground p50/p99 latency, and
// the same foreground latency without compaction (BM_ForegroundAlone).
#include <atomic>
#include <chrono>

#include "bench/bench_util.h"
#include "io/dma_file.h"
#include "scheduler/submit.h"

namespace dmalog::bench {
namespace {

constexpr uint64_t kFileBytes = 256ull << 20;
constexpr uint32_t kSmallBytes = 4096;
constexpr uint32_t kLargeBytes = 1u << 20;
constexpr int kForegroundTasks = 64;
constexpr int kCompactionTasks = 8;
constexpr auto kRunTime = std::chrono::seconds(2);

struct Shared {
  const io::DmaFile* small_file;
  const io::DmaFile* large_file;
  uint8_t* small_buf;
  uint8_t* large_buf;
  std::chrono::steady_clock::time_point deadline;
  int running = 0;
  bool failed = false;
};

Task<void> Writer(Shared* shared, bool large, uint64_t seed) {
  uint64_t offset = (seed * 7919 * kLargeBytes) % kFileBytes;
  const uint32_t bytes = large ? kLargeBytes : kSmallBytes;
  const io::DmaFile* file = large ? shared->large_file : shared->small_file;
  uint8_t* buf = large ? shared->large_buf : shared->small_buf;
  while (std::chrono::steady_clock::now() < shared->deadline) {
    Status s = co_await file->Write(buf, bytes, offset);
    if (!s.ok()) {
      shared->failed = true;
      break;
    }
    offset = (offset + (large ? kLargeBytes : 37 * kSmallBytes)) % (kFileBytes - bytes);
    offset -= offset % kSmallBytes;
  }
  --shared->running;
}

Task<bool> Run(Shared* shared, sched::QueueId fg, sched::QueueId bg, bool with_compaction) {
  sched::Executor* ex = sched::Executor::Current();
  shared->deadline = std::chrono::steady_clock::now() + kRunTime;
  for (int i = 0; i < kForegroundTasks; ++i, ++shared->running)
    ex->Spawn(fg, Writer(shared, false, i));
  for (int i = 0; with_compaction && i < kCompactionTasks; ++i, ++shared->running) {
    ex->Spawn(bg, Writer(shared, true, i));
  }
  while (shared->running > 0) co_await sched::sleep_for(std::chrono::milliseconds(10));
  co_return !shared->failed;
}

void Shares(benchmark::State& state, bool with_compaction) {
  const std::string dir = BenchDir();
  if (!ZeroFilledFile(dir + "/io_shares.small", kFileBytes) ||
      !ZeroFilledFile(dir + "/io_shares.large", kFileBytes)) {
    return state.SkipWithError("cannot create the files");
  }
  sched::GroupOptions go;
  go.shards = 1;
  go.cpus = {0};
  go.executor.backend.ring_depth = 256;
  go.executor.device_in_flight_max = 16;  // The device is "saturated" past this.
  go.executor.device_in_flight_bytes_max = 8u << 20;
  Result<std::unique_ptr<sched::ExecutorGroup>> group = sched::ExecutorGroup::Start(go);
  if (!group.ok()) return state.SkipWithError(group.status().ToString().c_str());
  sched::QueueOptions fgo;
  fgo.name = "foreground";
  fgo.shares = static_cast<uint32_t>(state.range(0));
  fgo.latency = sched::Latency::Matters{std::chrono::microseconds(500)};
  sched::QueueOptions bgo;
  bgo.name = "compaction";
  bgo.shares = static_cast<uint32_t>(state.range(1));
  Result<sched::QueueId> fg = (*group)->CreateQueue(0, fgo);
  Result<sched::QueueId> bg = (*group)->CreateQueue(0, bgo);
  Result<io::DmaFile> small = io::DmaFile::Open(dir + "/io_shares.small", {});
  Result<io::DmaFile> large = io::DmaFile::Open(dir + "/io_shares.large", {});
  if (!fg.ok() || !bg.ok() || !small.ok() || !large.ok()) return state.SkipWithError("set-up");
  AlignedBuffer small_buf = AllocateAligned(kSmallBytes, 1);
  AlignedBuffer large_buf = AllocateAligned(kLargeBytes, 2);
  Shared shared{&*small, &*large, small_buf.get(), large_buf.get(), {}, 0, false};
  Shared* sp = &shared;
  const sched::QueueId f = *fg, b = *bg;
  for (auto _ : state) {
    Result<bool> ok =
        (*group)
            ->submit_to(0, [sp, f, b, with_compaction] { return Run(sp, f, b, with_compaction); })
            .get();
    if (!ok.ok() || !*ok) return state.SkipWithError("a write failed");
  }
  Result<sched::ExecutorStats> stats = (*group)->Stats(0);
  if (!stats.ok()) return state.SkipWithError("stats");
  const sched::IoClassStats& fs = stats->io_classes[f];
  const sched::IoClassStats& bs = stats->io_classes[b];
  const double total_cost = static_cast<double>(fs.cost_dispatched + bs.cost_dispatched);
  state.counters["fg_cost_fraction"] = total_cost > 0 ? fs.cost_dispatched / total_cost : 0;
  state.counters["fg_ops_per_s"] = static_cast<double>(fs.completed) / kRunTime.count();
  state.counters["bg_MiB_per_s"] =
      static_cast<double>(bs.bytes_completed) / (1 << 20) / kRunTime.count();
  state.counters["fg_p50_us"] = static_cast<double>(fs.latency.PercentileUs(50));
  state.counters["fg_p99_us"] = static_cast<double>(fs.latency.PercentileUs(99));
  (*group)->Stop();
}

void BM_ForegroundAlone(benchmark::State& state) { Shares(state, false); }
void BM_ForegroundWithCompaction(benchmark::State& state) { Shares(state, true); }

BENCHMARK(BM_ForegroundAlone)->Args({800, 100})->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ForegroundWithCompaction)
    ->Args({800, 100})
    ->Args({100, 100})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

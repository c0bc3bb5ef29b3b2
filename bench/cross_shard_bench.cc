// Cross-shard round trip between two executors pinned to CPUs 0 and 1:
//   executor_to_executor: a task on shard 0 awaits submit_to(1, fn) (the
//                         SPSC rings, a wake-up through the target's ring);
//   thread_to_executor:   a plain thread calls group.submit_to(1, fn).get()
//                         (the multi-producer inbox and a std::future).
// The figure is the time per round trip.
#include <chrono>

#include "bench/bench_util.h"
#include "scheduler/submit.h"

namespace dmalog::bench {
namespace {

constexpr int kTripsPerIteration = 1000;

Task<double> RoundTrips() {
  const auto start = std::chrono::steady_clock::now();
  int sum = 0;
  for (int i = 0; i < kTripsPerIteration; ++i) {
    sum += co_await sched::submit_to(1, [i] { return i; });
  }
  benchmark::DoNotOptimize(sum);
  co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// state.range(0): 1 pins the executors to CPUs 0 and 1; 0 leaves them to
// the kernel (on a VM, waking an idle vCPU can dominate the round trip).
void BM_ExecutorToExecutor(benchmark::State& state) {
  auto group = StartGroup(state, 2, state.range(0) == 1);
  if (!group) return;
  for (auto _ : state) {
    Result<double> seconds = group->submit_to(0, [] { return RoundTrips(); }).get();
    if (!seconds.ok()) return state.SkipWithError(seconds.status().ToString().c_str());
    state.SetIterationTime(*seconds);
  }
  state.counters["sec_per_trip"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kTripsPerIteration),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  group->Stop();
}

void BM_ThreadToExecutor(benchmark::State& state) {
  auto group = StartGroup(state, 2);
  if (!group) return;
  for (auto _ : state) {
    int sum = 0;
    for (int i = 0; i < kTripsPerIteration; ++i) {
      Result<int> r = group->submit_to(1, [i] { return i; }).get();
      if (!r.ok()) return state.SkipWithError(r.status().ToString().c_str());
      sum += *r;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.counters["sec_per_trip"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kTripsPerIteration),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  group->Stop();
}

BENCHMARK(BM_ExecutorToExecutor)->Arg(1)->Arg(0)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ThreadToExecutor)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

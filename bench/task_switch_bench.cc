// Task switch cost on one pinned executor:
//   yield_switch: two tasks of one queue hand the CPU to each other with
//                 co_await yield(); the figure is time per switch.
//   await_task:   co_await of a Task<int> that completes at once (symmetric
//                 transfer in and out); the figure is time per await.
#include <chrono>

#include "bench/bench_util.h"
#include "scheduler/submit.h"

namespace dmalog::bench {
namespace {

constexpr int kSwitchesPerIteration = 10000;

Task<void> Yielder(int n, int* done) {
  for (int i = 0; i < n; ++i) co_await sched::yield();
  ++*done;
}

// Spawns two yielders and waits until both finished; returns seconds.
Task<double> TwoYielders() {
  int done = 0;
  const auto start = std::chrono::steady_clock::now();
  sched::Executor* ex = sched::Executor::Current();
  ex->Spawn(sched::kDefaultQueue, Yielder(kSwitchesPerIteration / 2, &done));
  ex->Spawn(sched::kDefaultQueue, Yielder(kSwitchesPerIteration / 2, &done));
  // This task yields too, so it is a third party in the rotation; count it.
  int own = 0;
  while (done < 2) {
    co_await sched::yield();
    ++own;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  co_return seconds* kSwitchesPerIteration / (kSwitchesPerIteration + own);
}

Task<int> Immediate(int x) { co_return x + 1; }

Task<double> Awaits() {
  const auto start = std::chrono::steady_clock::now();
  int x = 0;
  for (int i = 0; i < kSwitchesPerIteration; ++i) x = co_await Immediate(x);
  benchmark::DoNotOptimize(x);
  co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename Fn>
void RunOnExecutor(benchmark::State& state, Fn fn) {
  auto group = StartGroup(state, 1);
  if (!group) return;
  for (auto _ : state) {
    Result<double> seconds = group->submit_to(0, fn).get();
    if (!seconds.ok()) return state.SkipWithError(seconds.status().ToString().c_str());
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(state.iterations() * kSwitchesPerIteration);
  state.counters["sec_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kSwitchesPerIteration),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  group->Stop();
}

void BM_YieldSwitch(benchmark::State& state) {
  RunOnExecutor(state, [] { return TwoYielders(); });
}
void BM_AwaitTask(benchmark::State& state) {
  RunOnExecutor(state, [] { return Awaits(); });
}

BENCHMARK(BM_YieldSwitch)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AwaitTask)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

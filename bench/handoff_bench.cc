// The floor under any engine's blocking calls on this machine: N caller
// threads, each posting to one of S server threads and sleeping until that
// server wakes it, with no I/O and no engine at all. A server takes every
// request queued since its last round and wakes each caller (a FUTEX_WAKE
// when the caller sleeps, through sched::WakeWord as the engine does).
//
//   handoff/callers:16/servers:2: items_per_second is the most blocking
//   calls per second 16 threads can make through 2 server threads here, so
//   a bound on "16 durable writers" that no device speed lifts.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "scheduler/wake_word.h"

namespace dmalog::bench {
namespace {

constexpr int kCallsPerCaller = 2000;

struct Call {
  sched::WakeWord done;
};

// One server: a mutex-guarded queue, and a condition variable it sleeps on
// when the queue is empty (an executor's eventfd plays that part).
class Server {
 public:
  void Post(Call* call) {
    std::lock_guard lock(mu_);
    queue_.push_back(call);
    if (sleeping_) cv_.notify_one();
  }
  void Run(const std::atomic<bool>& stop) {
    std::vector<Call*> batch;
    // Runs until `stop`: the benchmark's lifetime, by design.
    while (!stop.load(std::memory_order_relaxed)) {
      {
        std::unique_lock lock(mu_);
        sleeping_ = true;
        cv_.wait_for(lock, std::chrono::milliseconds(1), [this] { return !queue_.empty(); });
        sleeping_ = false;
        batch.swap(queue_);
      }
      for (Call* call : batch) call->done.Signal();
      batch.clear();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call*> queue_;  // Guarded by mu_.
  bool sleeping_ = false;     // Guarded by mu_.
};

void Caller(Server* server) {
  for (int i = 0; i < kCallsPerCaller; ++i) {
    Call call;
    server->Post(&call);
    call.done.Wait();
  }
}

void BM_Handoff(benchmark::State& state) {
  const int callers = static_cast<int>(state.range(0));
  const int server_count = static_cast<int>(state.range(1));
  std::vector<Server> servers(static_cast<size_t>(server_count));
  std::atomic<bool> stop{false};
  std::vector<std::thread> server_threads;
  for (Server& s : servers) server_threads.emplace_back([&s, &stop] { s.Run(stop); });
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int c = 0; c < callers; ++c) {
      threads.emplace_back(Caller, &servers[static_cast<size_t>(c % server_count)]);
    }
    for (std::thread& t : threads) t.join();
  }
  stop.store(true);
  for (std::thread& t : server_threads) t.join();
  state.SetItemsProcessed(state.iterations() * callers * kCallsPerCaller);
}
BENCHMARK(BM_Handoff)
    ->Name("handoff")
    ->ArgNames({"callers", "servers"})
    ->Args({16, 2})
    ->Args({1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

// The CPU scheduling policy: shares and the latency budget.
//
// These tests pin the executors (ratio and latency measurements on a noisy
// 2-core VM need a CPU of their own) and measure real time.
#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "scheduler/executor_group.h"
#include "tests/scheduler/sched_test_util.h"

namespace dmalog::sched {
namespace {

using namespace std::chrono_literals;
using testing::AllowedCpus;
using testing::PercentileOf;
using testing::SmallGroup;
using testing::StartOrDie;

constexpr auto kBudget = 1ms;
constexpr auto kQuota = 500us;
// Slack on top of budget + quota: one spin chunk of the busy task (10 us),
// the loop's bookkeeping, and jitter on a shared VM (p99 of 100 trials).
// Time the kernel gave the executor's CPU to other processes (other builds
// on this 2-core machine take whole 4 ms ticks) is measured with the
// executor thread's CPU clock and subtracted: the executor cannot schedule
// while it is not running.
constexpr auto kSlack = 500us;
constexpr uint64_t kBoundNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kBudget + kQuota + kSlack).count();
constexpr uint32_t kTrials = 100;

// Busy work in chunks of `chunk_ns`, with a preemption point between chunks.
Task<void> Spin(std::atomic<bool>* stop, uint64_t chunk_ns) {
  while (!stop->load(std::memory_order_relaxed)) {
    const uint64_t until_ns = Executor::NowNs() + chunk_ns;
    while (Executor::NowNs() < until_ns) {
    }
    co_await maybe_yield();
  }
}

void SpawnSpinners(ExecutorGroup& group, uint32_t shard, QueueId queue, int count,
                   std::atomic<bool>* stop) {
  ASSERT_OK(group
                .submit_to(shard,
                           [=] {
                             for (int i = 0; i < count; ++i) {
                               Executor::Current()->Spawn(queue, Spin(stop, 10'000));
                             }
                           })
                .get());
}

// Stops the spinners and waits until they have returned.
void StopSpinners(ExecutorGroup& group, uint32_t shard, std::atomic<bool>* stop) {
  stop->store(true);
  ASSERT_OK(group.submit_to(shard, []() -> Task<void> { co_await sleep_for(2ms); }).get());
}

TEST(SchedulingTest, RuntimeFollowsShares) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  auto group = StartOrDie(SmallGroup(1, {cpus.front()}));
  ASSERT_NE(group, nullptr);
  QueueOptions small;
  small.name = "small";
  small.shares = 100;
  QueueOptions large;
  large.name = "large";
  large.shares = 400;
  Result<QueueId> small_id = group->CreateQueue(0, small);
  Result<QueueId> large_id = group->CreateQueue(0, large);
  ASSERT_TRUE(small_id.ok() && large_id.ok());
  std::atomic<bool> stop{false};
  SpawnSpinners(*group, 0, *small_id, 2, &stop);
  SpawnSpinners(*group, 0, *large_id, 2, &stop);
  std::this_thread::sleep_for(100ms);  // Warm-up.
  Result<ExecutorStats> before = group->Stats(0);
  std::this_thread::sleep_for(1500ms);
  Result<ExecutorStats> after = group->Stats(0);
  StopSpinners(*group, 0, &stop);
  ASSERT_TRUE(before.ok() && after.ok());
  const double small_ns = static_cast<double>(after->queues[*small_id].runtime_ns -
                                              before->queues[*small_id].runtime_ns);
  const double large_ns = static_cast<double>(after->queues[*large_id].runtime_ns -
                                              before->queues[*large_id].runtime_ns);
  ASSERT_GT(small_ns, 0.0);
  const double ratio = large_ns / small_ns;
  std::printf("runtime small=%.0f ms large=%.0f ms ratio=%.3f (want 4)\n", small_ns / 1e6,
              large_ns / 1e6, ratio);
  EXPECT_GE(ratio, 4.0 * 0.9);
  EXPECT_LE(ratio, 4.0 * 1.1);
  // Both queues kept running: the sum is most of the wall time.
  EXPECT_GT(small_ns + large_ns, 1500e6 * 0.5);
}

struct LatencySetup {
  std::unique_ptr<ExecutorGroup> group;
  QueueId latency_queue = 0;
  std::atomic<bool> stop{false};
};

// Shard `busy_shard` runs a NotImportant queue with two spinners and has a
// Latency::Matters{kBudget} queue.
void SetUpLatency(LatencySetup& setup, uint32_t shards, uint32_t busy_shard) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_GE(cpus.size(), shards);
  GroupOptions options = SmallGroup(shards, std::vector<int>(cpus.begin(), cpus.begin() + shards));
  options.executor.task_quota = kQuota;
  setup.group = StartOrDie(options);
  ASSERT_NE(setup.group, nullptr);
  QueueOptions busy;
  busy.name = "bulk";
  busy.latency = Latency::NotImportant{};
  // Share 1: vruntime alone would make it wait many slices (see
  // NotImportantQueueOfFewSharesWaits); only the budget gets it in on time.
  QueueOptions latency;
  latency.name = "interactive";
  latency.shares = 1;
  latency.latency = Latency::Matters{kBudget};
  Result<QueueId> busy_id = setup.group->CreateQueue(busy_shard, busy);
  Result<QueueId> latency_id = setup.group->CreateQueue(busy_shard, latency);
  ASSERT_TRUE(busy_id.ok() && latency_id.ok());
  setup.latency_queue = *latency_id;
  SpawnSpinners(*setup.group, busy_shard, *busy_id, 2, &setup.stop);
}

// Interference from other processes on this 2-vCPU VM (a sanitizer build of
// the neighbouring test, the host taking the vCPU) can push a burst of
// consecutive trials past the bound (CI, ASan build: trials 52-54 at 2.7-4 ms,
// p50 1.0 ms). In another CI run (plain build, the test running alone) 8-12
// of each round's 100 trials took 2.1-6.4 ms with p50 at 0.6-1.0 ms: time
// the host took the vCPU, which the guest's thread CPU clock does not see.
// So the bound applies to the p90 of a round, and must hold in one of
// kRoundsMax rounds of kTrials. A queue without the budget (Latency::
// NotImportant) has p50 8.5-11 ms and fails every round by 4x or more.
constexpr int kRoundsMax = 3;
constexpr int kBoundPercentile = 90;

// Prints the round's figures; true when its p90 is within the bound.
bool WithinBound(const std::vector<uint64_t>& delays_ns, const char* what) {
  EXPECT_EQ(delays_ns.size(), kTrials);
  if (delays_ns.size() != kTrials) return false;
  const uint64_t p50 = PercentileOf(delays_ns, 50);
  const uint64_t p90 = PercentileOf(delays_ns, kBoundPercentile);
  const uint64_t p99 = PercentileOf(delays_ns, 99);
  const uint64_t max = PercentileOf(delays_ns, 100);
  std::printf(
      "%s wake-to-start: p50=%lu us p90=%lu us p99=%lu us max=%lu us (bound on p90 %lu us)\n", what,
      p50 / 1000, p90 / 1000, p99 / 1000, max / 1000, kBoundNs / 1000);
  for (size_t i = 0; i < delays_ns.size(); ++i) {
    if (delays_ns[i] > kBoundNs) std::printf("  trial %zu: %lu us\n", i, delays_ns[i] / 1000);
  }
  return p90 <= kBoundNs;
}

// Work done by the woken task: with 1 share it costs 100 ms of vruntime.
constexpr uint64_t kWakeWorkNs = 100'000;

void BusyWait(uint64_t ns) {
  const uint64_t until_ns = Executor::NowNs() + ns;
  while (Executor::NowNs() < until_ns) {
  }
}

uint64_t CpuNs(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Wall time in [from, to] during which the thread of `clock` did not run.
// Valid while that thread is always runnable (the spinners keep it busy).
uint64_t StolenNs(uint64_t wall_from_ns, uint64_t wall_to_ns, uint64_t cpu_from_ns,
                  uint64_t cpu_to_ns) {
  const uint64_t wall_ns = wall_to_ns - wall_from_ns;
  const uint64_t cpu_ns = cpu_to_ns - cpu_from_ns;
  return wall_ns > cpu_ns ? wall_ns - cpu_ns : 0;
}

// Records, for each trial, how late the task started after its timer, less
// the time the executor thread was not running since the timer was armed.
Task<std::vector<uint64_t>> TimerTrials() {
  std::vector<uint64_t> delays_ns;
  for (uint32_t i = 0; i < kTrials; ++i) {
    const uint64_t armed_ns = Executor::NowNs();
    const uint64_t armed_cpu_ns = CpuNs(CLOCK_THREAD_CPUTIME_ID);
    const uint64_t deadline_ns = armed_ns + 2'000'000 + 37'000 * (i % 7);
    co_await SleepAwaitable{deadline_ns};
    const uint64_t start_ns = Executor::NowNs();
    const uint64_t stolen_ns =
        StolenNs(armed_ns, start_ns, armed_cpu_ns, CpuNs(CLOCK_THREAD_CPUTIME_ID));
    const uint64_t delay_ns = start_ns - deadline_ns;
    delays_ns.push_back(delay_ns > stolen_ns ? delay_ns - stolen_ns : 0);
    BusyWait(kWakeWorkNs);
  }
  co_return delays_ns;
}

TEST(SchedulingTest, LatencyQueueWokenByTimerStartsWithinBudget) {
  bool within = false;
  for (int round = 0; round < kRoundsMax && !within; ++round) {
    LatencySetup setup;
    SetUpLatency(setup, 1, 0);
    ASSERT_NE(setup.group, nullptr);
    Result<std::vector<uint64_t>> delays =
        setup.group
            ->submit_to(
                0, [] { return TimerTrials(); }, setup.latency_queue)
            .get();
    StopSpinners(*setup.group, 0, &setup.stop);
    ASSERT_TRUE(delays.ok());
    within = WithinBound(*delays, "timer");
  }
  EXPECT_TRUE(within) << "p90 over the bound in each of " << kRoundsMax << " rounds";
}

// On shard 1: sends kTrials calls to shard 0's latency queue; each returns
// the time it started there.
Task<std::vector<uint64_t>> MessageTrials(QueueId latency_queue) {
  const clockid_t target_clock = co_await submit_to(0, [] {
    clockid_t clock{};
    EXPECT_EQ(pthread_getcpuclockid(pthread_self(), &clock), 0);
    return clock;
  });
  std::vector<uint64_t> delays_ns;
  for (uint32_t i = 0; i < kTrials; ++i) {
    const uint64_t sent_cpu_ns = CpuNs(target_clock);
    const uint64_t sent_ns = Executor::NowNs();
    const std::pair<uint64_t, uint64_t> started = co_await submit_to(
        0,
        [] {
          const uint64_t now_ns = Executor::NowNs();
          const uint64_t cpu_ns = CpuNs(CLOCK_THREAD_CPUTIME_ID);
          BusyWait(kWakeWorkNs);
          return std::make_pair(now_ns, cpu_ns);
        },
        latency_queue);
    const uint64_t delay_ns = started.first - sent_ns;
    const uint64_t stolen_ns = StolenNs(sent_ns, started.first, sent_cpu_ns, started.second);
    delays_ns.push_back(delay_ns > stolen_ns ? delay_ns - stolen_ns : 0);
    co_await sleep_for(std::chrono::microseconds(300 + 37 * (i % 7)));
  }
  co_return delays_ns;
}

TEST(SchedulingTest, LatencyQueueWokenByMessageStartsWithinBudget) {
  if (AllowedCpus().size() < 2) GTEST_SKIP() << "needs two CPUs";
  bool within = false;
  for (int round = 0; round < kRoundsMax && !within; ++round) {
    LatencySetup setup;
    SetUpLatency(setup, 2, 0);
    ASSERT_NE(setup.group, nullptr);
    const QueueId latency_queue = setup.latency_queue;
    Result<std::vector<uint64_t>> delays =
        setup.group->submit_to(1, [latency_queue] { return MessageTrials(latency_queue); }).get();
    StopSpinners(*setup.group, 0, &setup.stop);
    ASSERT_TRUE(delays.ok());
    within = WithinBound(*delays, "message");
  }
  EXPECT_TRUE(within) << "p90 over the bound in each of " << kRoundsMax << " rounds";
}

// The same share-1 queue without a latency budget waits behind the busy
// queue's slices: proves the tests above can fail.
TEST(SchedulingTest, NotImportantQueueOfFewSharesWaits) {
  LatencySetup setup;
  SetUpLatency(setup, 1, 0);
  ASSERT_NE(setup.group, nullptr);
  QueueOptions plain;
  plain.name = "plain";
  plain.shares = 1;
  Result<QueueId> plain_id = setup.group->CreateQueue(0, plain);
  ASSERT_TRUE(plain_id.ok());
  Result<std::vector<uint64_t>> delays = setup.group
                                             ->submit_to(
                                                 0, [] { return TimerTrials(); }, *plain_id)
                                             .get();
  StopSpinners(*setup.group, 0, &setup.stop);
  ASSERT_TRUE(delays.ok());
  const uint64_t p99 = PercentileOf(*delays, 99);
  std::printf("share-1 NotImportant wake-to-start p99=%lu us\n", p99 / 1000);
  EXPECT_GT(p99, kBoundNs);
}

}  // namespace
}  // namespace dmalog::sched

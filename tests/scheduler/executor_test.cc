// Executor basics: spawn, sleep_for, yield, maybe_yield, queues, stats, stop.
#include "scheduler/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "scheduler/executor_group.h"
#include "tests/scheduler/sched_test_util.h"

namespace dmalog::sched {
namespace {

using namespace std::chrono_literals;
using testing::SmallGroup;
using testing::StartOrDie;

TEST(ExecutorTest, SubmitRunsPlainAndCoroutineCallables) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  Result<int> plain = group->submit_to(0, [] { return 41 + 1; }).get();
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, 42);
  Result<int> coro = group
                         ->submit_to(0,
                                     []() -> Task<int> {
                                       co_await yield();
                                       co_return 7;
                                     })
                         .get();
  ASSERT_TRUE(coro.ok());
  EXPECT_EQ(*coro, 7);
  EXPECT_OK(group->submit_to(0, [] {}).get());
}

TEST(ExecutorTest, SleepForWaitsAtLeastTheDuration) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  Result<uint64_t> slept = group
                               ->submit_to(0,
                                           []() -> Task<uint64_t> {
                                             const uint64_t start_ns = Executor::NowNs();
                                             co_await sleep_for(20ms);
                                             co_return Executor::NowNs() - start_ns;
                                           })
                               .get();
  ASSERT_TRUE(slept.ok());
  EXPECT_GE(*slept, 20'000'000u);
  EXPECT_LT(*slept, 500'000'000u);
}

TEST(ExecutorTest, TimersFireInDeadlineOrder) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  struct Order {
    std::vector<int> fired;
    int done = 0;
  };
  Result<std::vector<int>> order =
      group
          ->submit_to(0,
                      []() -> Task<std::vector<int>> {
                        static Order o;  // Coroutine lambdas cannot capture.
                        o = Order{};
                        auto sleeper = [](Order* order, int ms) -> Task<void> {
                          co_await sleep_for(std::chrono::milliseconds(ms));
                          order->fired.push_back(ms);
                          ++order->done;
                        };
                        for (int ms : {30, 10, 20}) {
                          Executor::Current()->Spawn(kDefaultQueue, sleeper(&o, ms));
                        }
                        while (o.done < 3) co_await sleep_for(1ms);
                        co_return o.fired;
                      })
          .get();
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(*order, (std::vector<int>{10, 20, 30}));
}

Task<void> Spinner(std::atomic<bool>* stop, std::atomic<uint64_t>* yields_ns) {
  while (!stop->load(std::memory_order_relaxed)) {
    co_await maybe_yield();
  }
  yields_ns->store(Executor::NowNs());
}

TEST(ExecutorTest, MaybeYieldLetsOtherTasksOfTheQueueRun) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> spinner_end_ns{0};
  ASSERT_OK(
      group
          ->submit_to(
              0,
              [&] { Executor::Current()->Spawn(kDefaultQueue, Spinner(&stop, &spinner_end_ns)); })
          .get());
  // The spinner never suspends on its own: this call only runs because
  // maybe_yield() gives the queue back once the quota is used.
  Result<int> ran = group->submit_to(0, [] { return 1; }).get();
  ASSERT_TRUE(ran.ok());
  EXPECT_EQ(spinner_end_ns.load(), 0u);
  stop = true;
  ASSERT_OK(group->submit_to(0, []() -> Task<void> { co_await sleep_for(1ms); }).get());
  EXPECT_NE(spinner_end_ns.load(), 0u);
}

TEST(ExecutorTest, MaybeYieldIsCheapWhenNotDue) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  Result<uint64_t> per_call_ns =
      group
          ->submit_to(0,
                      []() -> Task<uint64_t> {
                        constexpr uint64_t kCalls = 200'000;
                        const uint64_t start_ns = Executor::NowNs();
                        for (uint64_t i = 0; i < kCalls; ++i) {
                          co_await maybe_yield();
                        }
                        co_return (Executor::NowNs() - start_ns) / kCalls;
                      })
          .get();
  ASSERT_TRUE(per_call_ns.ok());
  // A clock read (vDSO, ~20-50 ns) plus occasional requeueing.
  EXPECT_LT(*per_call_ns, 2'000u);
}

TEST(ExecutorTest, QueueSharesAreValidated) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  for (uint32_t bad : {0u, 1001u}) {
    QueueOptions options;
    options.shares = bad;
    Result<QueueId> queue = group->CreateQueue(0, options);
    ASSERT_FALSE(queue.ok());
    EXPECT_TRUE(queue.status().IsInvalidArgument()) << queue.status().ToString();
  }
  QueueOptions zero_budget;
  zero_budget.latency = Latency::Matters{0ns};
  EXPECT_TRUE(group->CreateQueue(0, zero_budget).status().IsInvalidArgument());
  for (uint32_t good : {1u, 1000u}) {
    QueueOptions options;
    options.shares = good;
    Result<QueueId> queue = group->CreateQueue(0, options);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    EXPECT_NE(*queue, kDefaultQueue);
  }
}

TEST(ExecutorTest, TooManyQueuesIsBusy) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  for (uint32_t i = 1; i < kQueuesMax; ++i) ASSERT_TRUE(group->CreateQueue(0, {}).ok());
  EXPECT_TRUE(group->CreateQueue(0, {}).status().IsBusy());
}

TEST(ExecutorTest, StatsNameTheBackendAndCountTasks) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_OK(group->submit_to(0, [] {}).get());
  Result<ExecutorStats> stats = group->Stats(0);
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(stats->backend_description.empty());
  if (stats->backend_kind == io::BackendKind::kUring) {
    EXPECT_TRUE(stats->fallback_reason.empty());
  } else {
    EXPECT_FALSE(stats->fallback_reason.empty());
  }
  ASSERT_EQ(stats->queues.size(), 1u);
  EXPECT_GE(stats->queues[0].tasks_run, 10u);
  EXPECT_GT(stats->queues[0].runtime_ns, 0u);
  EXPECT_GE(stats->messages_run, 10u);
}

// With an idle poll, messages that come while the executor polls are taken
// without it going to sleep; without one it sleeps between them.
TEST(ExecutorTest, IdlePollTakesMessagesWithoutSleeping) {
  constexpr int kMessages = 40;
  uint64_t sleeps[2] = {0, 0};
  for (int polling = 0; polling < 2; ++polling) {
    GroupOptions options = SmallGroup(1);
    options.executor.idle_poll =
        polling ? std::chrono::milliseconds(500) : std::chrono::nanoseconds(0);
    auto group = StartOrDie(options);
    ASSERT_NE(group, nullptr);
    ASSERT_OK(group->submit_to(0, [] {}).get());
    Result<ExecutorStats> before = group->Stats(0);
    ASSERT_TRUE(before.ok());
    for (int i = 0; i < kMessages; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ASSERT_OK(group->submit_to(0, [] {}).get());
    }
    Result<ExecutorStats> after = group->Stats(0);
    ASSERT_TRUE(after.ok());
    sleeps[polling] = after->sleeps - before->sleeps;
  }
  // Each 1 ms gap puts the plain executor to sleep; the polling one sleeps
  // only if a gap outlasts its 500 ms window (a stalled host).
  EXPECT_GE(sleeps[0], static_cast<uint64_t>(kMessages / 2));
  EXPECT_LT(sleeps[1], static_cast<uint64_t>(kMessages / 4));
}

// A deferrable post does not wake an executor that defers its wake-ups
// (the flush in flight will wake it, and the message could not be served
// before): it runs when the executor next wakes. Once the executor stops
// deferring, a deferrable post wakes it as any other does.
void RecordRunTime(Executor& /*executor*/, void* arg, uint64_t /*tag*/) {
  static_cast<std::atomic<uint64_t>*>(arg)->store(Executor::NowNs());
}
void DropNothing(void* /*arg*/) {}

Task<void> DeferWakesThenSleep(std::chrono::milliseconds deferred, std::atomic<uint64_t>* until_ns,
                               std::atomic<bool>* deferring) {
  Executor::Current()->DeferWakes(true);
  until_ns->store(Executor::NowNs() + static_cast<uint64_t>(deferred / 1ns));
  deferring->store(true);
  co_await sleep_for(deferred);
  Executor::Current()->DeferWakes(false);
  deferring->store(false);
  co_await sleep_for(std::chrono::hours(1));  // Destroyed by Stop.
}

// Waits (bounded) for `done`; false on time-out.
template <typename Pred>
bool WaitFor(Pred done) {
  for (int i = 0; i < 10'000 && !done(); ++i) std::this_thread::sleep_for(1ms);
  return done();
}

TEST(ExecutorTest, DeferrablePostWaitsForTheWakeUpTheExecutorExpects) {
  GroupOptions options = SmallGroup(1);
  options.executor.idle_poll = std::chrono::nanoseconds(0);
  auto group = StartOrDie(options);
  ASSERT_NE(group, nullptr);
  std::atomic<uint64_t> until_ns{0};
  std::atomic<bool> deferring{false};
  ASSERT_TRUE(group->PostTask(0, DeferWakesThenSleep(300ms, &until_ns, &deferring), kDefaultQueue));
  ASSERT_TRUE(WaitFor([&] { return deferring.load() && group->executor(0).asleep(); }));
  // Past Sleep()'s re-check of the inboxes, which would take the message.
  std::this_thread::sleep_for(20ms);
  std::atomic<uint64_t> deferred_ran_ns{0};
  ASSERT_TRUE(group->Post(0, Message{&RecordRunTime, &DropNothing, &deferred_ran_ns, 0},
                          /*deferrable=*/true));
  ASSERT_TRUE(WaitFor([&] { return deferred_ran_ns.load() != 0; }));
  EXPECT_GE(deferred_ran_ns.load(), until_ns.load()) << "the post woke the executor";

  ASSERT_TRUE(WaitFor([&] { return !deferring.load() && group->executor(0).asleep(); }));
  std::atomic<uint64_t> prompt_ran_ns{0};
  ASSERT_TRUE(group->Post(0, Message{&RecordRunTime, &DropNothing, &prompt_ran_ns, 0},
                          /*deferrable=*/true));
  // The executor sleeps for an hour unless the post wakes it.
  EXPECT_TRUE(WaitFor([&] { return prompt_ran_ns.load() != 0; }));
}

// Counts live instances, to prove frames are destroyed at Stop.
struct LiveCounter {
  explicit LiveCounter(std::atomic<int>* live) : live_(live) { ++*live_; }
  ~LiveCounter() { --*live_; }
  std::atomic<int>* live_;
};

Task<void> SleepForever(std::atomic<int>* live) {
  LiveCounter counter(live);
  co_await sleep_for(std::chrono::hours(1));
  ADD_FAILURE() << "woke up after an hour";
}

Task<void> AwaitPeerForever(std::atomic<int>* live) {
  LiveCounter counter(live);
  // The peer's task sleeps for an hour: the reply never comes.
  co_await submit_to(1, []() -> Task<void> { co_await sleep_for(std::chrono::hours(1)); });
  ADD_FAILURE() << "reply arrived";
}

TEST(ExecutorTest, StopDestroysSuspendedTasks) {
  std::atomic<int> live{0};
  auto group = StartOrDie(SmallGroup(2));
  ASSERT_NE(group, nullptr);
  ASSERT_OK(group
                ->submit_to(0,
                            [&] {
                              for (int i = 0; i < 5; ++i) {
                                Executor::Current()->Spawn(kDefaultQueue, SleepForever(&live));
                                Executor::Current()->Spawn(kDefaultQueue, AwaitPeerForever(&live));
                              }
                            })
                .get());
  // Both kinds are suspended now (the peer call has been sent).
  ASSERT_OK(group->submit_to(1, []() -> Task<void> { co_await sleep_for(5ms); }).get());
  EXPECT_EQ(live.load(), 10);
  group->Stop();
  EXPECT_EQ(live.load(), 0);
  // After Stop, calls are refused with Aborted rather than lost.
  Status late = group->submit_to(0, [] {}).get();
  EXPECT_TRUE(late.IsAborted()) << late.ToString();
}

TEST(ExecutorTest, PinningToAMissingCpuFailsToStart) {
  GroupOptions options = SmallGroup(1, {CPU_SETSIZE - 1});
  Result<std::unique_ptr<ExecutorGroup>> group = ExecutorGroup::Start(options);
  ASSERT_FALSE(group.ok());
  EXPECT_NE(group.status().message().find("pthread_setaffinity_np"), std::string::npos)
      << group.status().ToString();
}

TEST(ExecutorTest, PlacementMustNameEnoughCpus) {
  GroupOptions options = SmallGroup(2, {0});
  EXPECT_TRUE(ExecutorGroup::Start(options).status().IsInvalidArgument());
}

}  // namespace
}  // namespace dmalog::sched

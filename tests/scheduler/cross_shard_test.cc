// Cross-shard messages: round trips between pinned executors, from inside
// (awaitable) and outside (future), and back-pressure on full rings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "scheduler/executor_group.h"
#include "tests/scheduler/sched_test_util.h"

namespace dmalog::sched {
namespace {

using namespace std::chrono_literals;
using testing::AllowedCpus;
using testing::SmallGroup;
using testing::StartOrDie;

std::unique_ptr<ExecutorGroup> StartPinnedPair() {
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) return StartOrDie(SmallGroup(2));
  return StartOrDie(SmallGroup(2, {cpus[0], cpus[1]}));
}

Task<uint32_t> ShardOfCaller() { co_return Executor::Current()->shard(); }

TEST(CrossShardTest, RoundTripFromInsideAnExecutor) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  Result<int> sum =
      group
          ->submit_to(1,
                      []() -> Task<int> {
                        // Plain callable, then one returning a Task.
                        const uint32_t where =
                            co_await submit_to(0, [] { return Executor::Current()->shard(); });
                        const uint32_t where_task =
                            co_await submit_to(0, [] { return ShardOfCaller(); });
                        co_await submit_to(0, [] {});                 // void
                        EXPECT_EQ(Executor::Current()->shard(), 1u);  // Resumed at home.
                        co_return static_cast<int>(where * 10 + where_task);
                      })
          .get();
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, 0);
}

TEST(CrossShardTest, RoundTripFromOutsideThread) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  for (uint32_t shard = 0; shard < 2; ++shard) {
    Result<uint32_t> where = group->submit_to(shard, [] { return ShardOfCaller(); }).get();
    ASSERT_TRUE(where.ok());
    EXPECT_EQ(*where, shard);
  }
}

TEST(CrossShardTest, ReplyResumesInTheCallersQueue) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  QueueOptions options;
  options.name = "caller";
  Result<QueueId> queue = group->CreateQueue(1, options);
  ASSERT_TRUE(queue.ok());
  Result<uint32_t> resumed_in = group
                                    ->submit_to(
                                        1,
                                        []() -> Task<uint32_t> {
                                          co_await submit_to(0, [] { return 1; });
                                          co_return Executor::Current()->current_queue();
                                        },
                                        *queue)
                                    .get();
  ASSERT_TRUE(resumed_in.ok());
  EXPECT_EQ(*resumed_in, *queue);
}

// Far more calls than a ring holds, all in flight at once from shard 1.
Task<void> Caller(int value, std::atomic<int64_t>* sum, std::atomic<int>* done) {
  const int doubled = co_await submit_to(0, [value] { return value * 2; });
  *sum += doubled;
  ++*done;
}

TEST(CrossShardTest, FullRingIsBackPressureNotLoss) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  constexpr int kCalls = 5 * static_cast<int>(kRingCapacity);
  std::atomic<int64_t> sum{0};
  std::atomic<int> done{0};
  ASSERT_OK(group
                ->submit_to(1,
                            [&] {
                              for (int i = 0; i < kCalls; ++i) {
                                Executor::Current()->Spawn(kDefaultQueue, Caller(i, &sum, &done));
                              }
                            })
                .get());
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (done.load() < kCalls && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(done.load(), kCalls);
  EXPECT_EQ(sum.load(), int64_t{kCalls} * (kCalls - 1));
}

TEST(CrossShardTest, FullInboxBlocksOutsideSenderUntilDrained) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  // Hold shard 0 busy so the inbox fills up, then let it drain.
  std::atomic<bool> release{false};
  auto blocker = group->submit_to(0, [&] {
    while (!release.load()) std::this_thread::sleep_for(100us);
  });
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    release = true;
  });
  constexpr int kCalls = 3 * static_cast<int>(MessageInbox::kCapacity);
  std::vector<std::future<Result<int>>> futures;
  for (int i = 0; i < kCalls; ++i) futures.push_back(group->submit_to(0, [i] { return i; }));
  releaser.join();
  EXPECT_OK(blocker.get());
  for (int i = 0; i < kCalls; ++i) {
    Result<int> value = futures[i].get();
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(*value, i);
  }
}

TEST(CrossShardTest, SleepingExecutorIsWokenByMessage) {
  auto group = StartPinnedPair();
  ASSERT_NE(group, nullptr);
  // Shard 0 is idle (asleep in Poll with no timeout): a message must wake it.
  std::this_thread::sleep_for(20ms);
  Result<ExecutorStats> before = group->Stats(0);
  ASSERT_TRUE(before.ok());
  EXPECT_GT(before->sleeps, 0u);
  const auto start = std::chrono::steady_clock::now();
  Result<int> value =
      group->submit_to(1, []() -> Task<int> { co_return co_await submit_to(0, [] { return 5; }); })
          .get();
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace dmalog::sched

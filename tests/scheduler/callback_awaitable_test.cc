// AwaitCallback: a task awaits an operation that answers through a callback.
// The callback may run inline, from another thread, or after the awaiting
// task is gone (its executor stopped first): then it must touch nothing of
// the task.
#include "scheduler/callback_awaitable.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "scheduler/executor_group.h"
#include "tests/scheduler/sched_test_util.h"

namespace dmalog::sched {
namespace {

using namespace std::chrono_literals;
using testing::SmallGroup;
using testing::StartOrDie;

using Value = std::shared_ptr<int>;
using Callback = std::function<void(Value)>;

// Where the awaiting tasks leave their callbacks for the test to call.
struct Stash {
  std::mutex mu;
  std::vector<Callback> callbacks;
  std::atomic<uint32_t> resumed{0};
  std::atomic<uint32_t> resumed_elsewhere{0};
  std::atomic<int> sum{0};

  size_t started() {
    std::lock_guard<std::mutex> lock(mu);
    return callbacks.size();
  }
  void Keep(Callback done) {
    std::lock_guard<std::mutex> lock(mu);
    callbacks.push_back(std::move(done));
  }
};

Task<void> AwaitStashed(Stash* stash) {
  Executor* home = Executor::Current();
  Value v = co_await AwaitCallback<Value>([stash](Callback done) { stash->Keep(std::move(done)); });
  if (Executor::Current() != home) stash->resumed_elsewhere.fetch_add(1);
  stash->sum.fetch_add(*v);
  stash->resumed.fetch_add(1);
}

Task<void> AwaitInline(Stash* stash) {
  Value v = co_await AwaitCallback<Value>([](Callback done) { done(std::make_shared<int>(5)); });
  stash->sum.fetch_add(*v);
  stash->resumed.fetch_add(1);
}

// Waits (bounded) until `n` tasks have handed over their callbacks.
bool WaitStarted(Stash& stash, size_t n) {
  for (int i = 0; i < 10000 && stash.started() < n; ++i) std::this_thread::sleep_for(1ms);
  return stash.started() == n;
}

bool WaitResumed(Stash& stash, uint32_t n) {
  for (int i = 0; i < 10000 && stash.resumed.load() < n; ++i) std::this_thread::sleep_for(1ms);
  return stash.resumed.load() == n;
}

TEST(CallbackAwaitableTest, InlineCallbackResumesAtOnce) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  Stash stash;
  ASSERT_TRUE(group->PostTask(0, AwaitInline(&stash), kDefaultQueue));
  ASSERT_TRUE(WaitResumed(stash, 1));
  EXPECT_EQ(stash.sum.load(), 5);
}

// More awaits at once than the executor has slots: the rest come from the
// heap, and every task resumes on its own executor.
TEST(CallbackAwaitableTest, ManyAwaitsFromAnotherThreadResumeAtHome) {
  auto group = StartOrDie(SmallGroup(2));
  ASSERT_NE(group, nullptr);
  Stash stash;
  constexpr uint32_t kTasks = AwaitSlots::kCapacity + 100;
  for (uint32_t i = 0; i < kTasks; ++i) {  // All on shard 0, to use its heap slots too.
    ASSERT_TRUE(group->PostTask(0, AwaitStashed(&stash), kDefaultQueue));
  }
  ASSERT_TRUE(WaitStarted(stash, kTasks));
  for (Callback& done : stash.callbacks) done(std::make_shared<int>(1));
  ASSERT_TRUE(WaitResumed(stash, kTasks));
  EXPECT_EQ(stash.sum.load(), static_cast<int>(kTasks));
  EXPECT_EQ(stash.resumed_elsewhere.load(), 0u);
}

// The executor stops (and destroys its suspended tasks) before the
// operations answer: each late callback must drop its result, not store it
// into a freed frame (ASan reports that as a use after free; without ASan
// the stored copy keeps the value's count up).
TEST(CallbackAwaitableTest, CallbackAfterTheTaskIsDestroyedTouchesNothing) {
  auto group = StartOrDie(SmallGroup(2));
  ASSERT_NE(group, nullptr);
  Stash stash;
  constexpr uint32_t kTasks = AwaitSlots::kCapacity + 10;  // Pool and heap slots.
  for (uint32_t i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(group->PostTask(0, AwaitStashed(&stash), kDefaultQueue));
  }
  ASSERT_TRUE(WaitStarted(stash, kTasks));
  // A few answer in time; their tasks resume before the stop.
  for (uint32_t i = 0; i < 3; ++i) stash.callbacks[i](std::make_shared<int>(1));
  ASSERT_TRUE(WaitResumed(stash, 3));
  group->Stop();
  const Value late = std::make_shared<int>(100);
  for (uint32_t i = 3; i < kTasks; ++i) stash.callbacks[i](late);
  EXPECT_EQ(late.use_count(), 1) << "a late result was stored somewhere";
  EXPECT_EQ(stash.resumed.load(), 3u);
  EXPECT_EQ(stash.sum.load(), 3);
  group.reset();
}

// The late callbacks race the stop itself: a thread calls them while the
// executor destroys its tasks. Each result is either taken by a task that
// resumed in time or dropped; none is left in a freed frame (TSan and ASan
// check the rest).
TEST(CallbackAwaitableTest, CallbacksRacingTheStopLoseNothingAndTouchNoFreedFrame) {
  for (int round = 0; round < 20; ++round) {
    auto group = StartOrDie(SmallGroup(1));
    ASSERT_NE(group, nullptr);
    Stash stash;
    constexpr uint32_t kTasks = 300;
    for (uint32_t i = 0; i < kTasks; ++i) {
      ASSERT_TRUE(group->PostTask(0, AwaitStashed(&stash), kDefaultQueue));
    }
    ASSERT_TRUE(WaitStarted(stash, kTasks));
    const Value value = std::make_shared<int>(1);
    std::thread caller([&stash, &value] {
      for (Callback& done : stash.callbacks) done(value);
    });
    std::this_thread::sleep_for(std::chrono::microseconds(50 * round));
    group->Stop();
    caller.join();
    EXPECT_EQ(value.use_count(), 1) << "round " << round;
    EXPECT_EQ(stash.sum.load(), static_cast<int>(stash.resumed.load())) << "round " << round;
    EXPECT_LE(stash.resumed.load(), kTasks);
    group.reset();
  }
}

}  // namespace
}  // namespace dmalog::sched

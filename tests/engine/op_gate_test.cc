// OpGate (engine/op_gate.h): Close's wait for the calls in progress.
#include "engine/op_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

namespace dmalog::engine {
namespace {

TEST(OpGateTest, PassesUntilClosedThenRefuses) {
  OpGate gate;
  {
    OpGate::Pass a = gate.Enter();
    OpGate::Pass b = gate.Enter();
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
  }
  EXPECT_FALSE(gate.closed());
  EXPECT_TRUE(gate.CloseAndDrain());
  EXPECT_TRUE(gate.closed());
  EXPECT_FALSE(gate.Enter());
  EXPECT_FALSE(gate.CloseAndDrain()) << "the second close does not wait again";
}

TEST(OpGateTest, CloseWaitsForThePassesTakenBefore) {
  OpGate gate;
  std::optional<OpGate::Pass> held(gate.Enter());
  ASSERT_TRUE(*held);
  std::atomic<bool> drained{false};
  std::thread closer([&] {
    EXPECT_TRUE(gate.CloseAndDrain());
    drained.store(true);
  });
  // The closer refuses new passes at once, but waits for the held one.
  while (!gate.closed()) std::this_thread::yield();
  EXPECT_FALSE(gate.Enter());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(drained.load()) << "Close returned while a call was in progress";
  held.reset();
  closer.join();
  EXPECT_TRUE(drained.load());
}

// Many threads entering and leaving while another closes: no pass is
// granted after CloseAndDrain returns, and it returns.
TEST(OpGateTest, NoPassIsGrantedAfterTheDrain) {
  constexpr int kThreads = 8;
  constexpr int kEntriesMax = 1000000;
  OpGate gate;
  std::atomic<bool> drained{false};
  std::atomic<int> late{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEntriesMax; ++i) {
        OpGate::Pass pass = gate.Enter();
        if (!pass) return;
        if (drained.load()) late.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(gate.CloseAndDrain());
  drained.store(true);
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(late.load(), 0);
}

}  // namespace
}  // namespace dmalog::engine

// The kill -9 suite: runs the real `dmalog stress`, kills it with SIGKILL at a
// random moment, runs `dmalog stress --verify`, and repeats.
//
// Kills land anywhere: during open and recovery, group commits, segment
// roll-over (4 MiB segments fill in about a second) and preparation of the
// next segment. Every kCyclesPerDatabase cycles the database starts afresh,
// so recovery time stays flat.
//
//   ctest -L crash                                   # 200 cycles (CI)
//   build/kill9_test --gtest_filter='Kill9.*' --cycles=2000 --seed=7   # a long run
//   (or DMALOG_CRASH_CYCLES=2000 DMALOG_CRASH_SEED=7 ctest -L crash)
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tests/verify_util.h"

namespace dmalog::testing {
namespace {

constexpr uint64_t kCyclesDefault = 200;
constexpr uint64_t kCyclesPerDatabase = 25;
constexpr uint64_t kKillDelayMinMs = 20;
constexpr uint64_t kKillDelayMaxMs = 600;
static_assert(kKillDelayMinMs < kKillDelayMaxMs);

struct Totals {
  uint64_t cycles = 0;
  uint64_t killed = 0;  // Cycles whose stress run the kill interrupted.
  VerifyLedger verify;
};

constexpr uint64_t kStressDurationS = 60;  // Far longer than any kill delay.
static_assert(kKillDelayMaxMs < kStressDurationS * 1000 / 2);

TEST(Kill9, StressKillVerifyCycles) {
  const uint64_t cycles = TestFlag("cycles", "DMALOG_CRASH_CYCLES", kCyclesDefault);
  const uint64_t seed = TestFlag("seed", "DMALOG_CRASH_SEED", 1);
  ASSERT_TRUE(std::filesystem::exists(kDmalogBinary))
      << kDmalogBinary << " is missing: build the dmalog_cli target first";
  TestDir dir;
  const std::string db = dir.File("db"), state = dir.File("expected_state");
  std::mt19937_64 rng(seed);
  Totals t;
  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    if (cycle % kCyclesPerDatabase == 0) {
      std::filesystem::remove_all(db);
      std::filesystem::remove(state);
      t.verify.StartDatabase();
    }
    const uint64_t delay_ms = kKillDelayMinMs + rng() % (kKillDelayMaxMs - kKillDelayMinMs);
    const std::string out = dir.File("stress.out"), err = dir.File("stress.err");
    const pid_t pid = StartProgram(
        kDmalogBinary, StressArgs(db, state, seed * 1000003 + cycle, kStressDurationS), out, err);
    ASSERT_GT(pid, 0) << "posix_spawn " << kDmalogBinary;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    const ProcessResult run = WaitProgram(pid, out, err);
    // A run that ended before the kill must have ended well.
    ASSERT_TRUE(!run.exited || run.code == 0)
        << "cycle " << cycle << ": stress failed (exit " << run.code << ")\n"
        << run.out << run.err;
    t.killed += run.exited ? 0 : 1;
    const ProcessResult v = RunDmalog(
        {"--db=" + db, "stress", "--verify", "--expected_state=" + state}, dir.path().string());
    ++t.cycles;
    if (!t.verify.Account(v)) {
      ADD_FAILURE() << "cycle " << cycle << " (kill after " << delay_ms << " ms, seed " << seed
                    << "): verify failed (exit " << v.code << ")\n"
                    << v.out << v.err << "reproduce: " << DMALOG_TEST_DATA_DIR
                    << "/../kill9_test --gtest_filter=Kill9.* --seed=" << seed
                    << " --cycles=" << cycle + 1 << "  (DMALOG_KEEP_TEST_DATA=1 keeps " << db
                    << ")";
      break;
    }
  }
  std::printf("kill9: cycles %llu (killed mid-run %llu); %s\n",
              static_cast<unsigned long long>(t.cycles), static_cast<unsigned long long>(t.killed),
              t.verify.Summary().c_str());
  EXPECT_EQ(t.cycles, cycles);
  ExpectVerifiedClean(t.verify);
}

}  // namespace
}  // namespace dmalog::testing

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
  uint64_t operations_checked = 0;
  uint64_t keys_checked = 0;
  uint64_t pending_resolved = 0;
  int64_t lost = 0;
  int64_t failed_opens = 0;
  int64_t resurrected = 0;
  int64_t other_mismatches = 0;
};

std::vector<std::string> StressArgs(const std::string& db, const std::string& state,
                                    uint64_t seed) {
  return {"--db=" + db,
          "--expected_state=" + state,
          "--segment_size_bytes=4194304",
          "--shards=2",
          "stress",
          "--threads=4",
          "--keys=2000",
          "--value_size_max=128",
          "--duration_s=60",
          "--ops=0",
          "--seed=" + std::to_string(seed)};
}

// Adds what one `stress --verify` printed to `t`; false on any failure.
bool Account(const ProcessResult& v, Totals* t, uint64_t* acknowledged) {
  if (v.out.find("verify: FAILED: open") != std::string::npos || !v.exited) {
    ++t->failed_opens;
    return false;
  }
  const int64_t lost = NumberAfter(v.out, "acknowledged writes lost ");
  const int64_t resurrected = NumberAfter(v.out, "resurrected deletes ");
  const int64_t mismatches = NumberAfter(v.out, "mismatches");
  const bool ok = v.code == 0 && v.out.find("verify: OK") != std::string::npos;
  if (v.out.find("nothing to check") == std::string::npos) {
    t->lost += std::max<int64_t>(lost, 0);
    t->resurrected += std::max<int64_t>(resurrected, 0);
    t->keys_checked += std::max<int64_t>(NumberAfter(v.out, "verify: checked "), 0);
    t->pending_resolved += std::max<int64_t>(NumberAfter(v.out, "found applied "), 0) +
                           std::max<int64_t>(NumberAfter(v.out, "not applied "), 0);
    const int64_t recorded = NumberAfter(v.out, " keys, ");
    if (recorded >= 0) {
      t->operations_checked += static_cast<uint64_t>(recorded) - *acknowledged;
      *acknowledged = static_cast<uint64_t>(recorded);
    }
  }
  if (!ok && lost <= 0 && resurrected <= 0) ++t->other_mismatches;
  (void)mismatches;
  return ok;
}

TEST(Kill9, StressKillVerifyCycles) {
  const uint64_t cycles = TestFlag("cycles", "DMALOG_CRASH_CYCLES", kCyclesDefault);
  const uint64_t seed = TestFlag("seed", "DMALOG_CRASH_SEED", 1);
  ASSERT_TRUE(std::filesystem::exists(kDmalogBinary))
      << kDmalogBinary << " is missing: build the dmalog_cli target first";
  TestDir dir;
  const std::string db = dir.File("db"), state = dir.File("expected_state");
  std::mt19937_64 rng(seed);
  Totals t;
  uint64_t acknowledged = 0;
  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    if (cycle % kCyclesPerDatabase == 0) {
      std::filesystem::remove_all(db);
      std::filesystem::remove(state);
      acknowledged = 0;
    }
    const uint64_t delay_ms = kKillDelayMinMs + rng() % (kKillDelayMaxMs - kKillDelayMinMs);
    const std::string out = dir.File("stress.out"), err = dir.File("stress.err");
    const pid_t pid =
        StartProgram(kDmalogBinary, StressArgs(db, state, seed * 1000003 + cycle), out, err);
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
    if (!Account(v, &t, &acknowledged)) {
      ADD_FAILURE() << "cycle " << cycle << " (kill after " << delay_ms << " ms, seed " << seed
                    << "): verify failed (exit " << v.code << ")\n"
                    << v.out << v.err << "reproduce: " << DMALOG_TEST_DATA_DIR
                    << "/../kill9_test --gtest_filter=Kill9.* --seed=" << seed
                    << " --cycles=" << cycle + 1 << "  (DMALOG_KEEP_TEST_DATA=1 keeps " << db
                    << ")";
      break;
    }
  }
  std::printf(
      "kill9: cycles %llu (killed mid-run %llu), operations checked %llu, keys checked %llu, "
      "pending writes resolved %llu\n"
      "kill9: acknowledged writes lost %lld, failed opens %lld, resurrected deletes %lld, "
      "other mismatches %lld\n",
      static_cast<unsigned long long>(t.cycles), static_cast<unsigned long long>(t.killed),
      static_cast<unsigned long long>(t.operations_checked),
      static_cast<unsigned long long>(t.keys_checked),
      static_cast<unsigned long long>(t.pending_resolved), static_cast<long long>(t.lost),
      static_cast<long long>(t.failed_opens), static_cast<long long>(t.resurrected),
      static_cast<long long>(t.other_mismatches));
  EXPECT_EQ(t.cycles, cycles);
  EXPECT_GT(t.operations_checked, 0u);
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.failed_opens, 0);
  EXPECT_EQ(t.resurrected, 0);
  EXPECT_EQ(t.other_mismatches, 0);
}

}  // namespace
}  // namespace dmalog::testing

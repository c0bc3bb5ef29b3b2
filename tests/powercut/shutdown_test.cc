// The real-kernel power-cut suite: the database sits on a loop-mounted ext4
// or xfs image, `dmalog stress` writes to it, and the filesystem is shut down
// mid-write with `xfs_io -x -c shutdown` (FS_IOC_SHUTDOWN without log flush:
// from that instant the device receives nothing more, as in a power cut).
// Then unmount, mount again (journal/log replay), `dmalog stress --verify`
// against the expected state, which lives outside the cut filesystem, and
// repeat. Every kCyclesPerDatabase cycles the database starts afresh, so
// verification time stays flat.
//
// Limits: the device keeps everything it received, including writes that
// were never flushed from a volatile disk cache, so this cannot see a
// missing fdatasync on preallocated (already written) segments; the
// simulated power-loss suite (label powerloss) covers that.
//
// Cuts land anywhere: in open and recovery, group commits, segment
// roll-over, and preparation of the next segment (4 MiB segments fill in
// about a second). Every kTargetedCutEvery-th cycle cuts the moment a
// segment under construction (`.seg.tmp`) appears. Most such files are gone
// after the replay (their creation was not committed to the journal yet);
// the summary counts the ones that survived.
//
//   ctest -L powercut                                     # 50 cycles per filesystem
//   build/shutdown_test --cycles=500 --seed=7             # a long run
//   (or DMALOG_POWERCUT_CYCLES=500 DMALOG_POWERCUT_SEED=7 ctest -L powercut)
//
// Needs root, /dev/loop-control, e2fsprogs and xfsprogs; otherwise the tests
// skip and say why, except when the CI environment variable is set: then
// they fail.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

#include "tests/powercut/powercut_util.h"
#include "tests/test_util.h"
#include "tests/verify_util.h"

namespace dmalog::testing {
namespace {

constexpr uint64_t kCyclesDefault = 50;
constexpr uint64_t kCyclesPerDatabase = 10;
constexpr uint64_t kCutDelayMinMs = 50;
constexpr uint64_t kCutDelayMaxMs = 700;
static_assert(kCutDelayMinMs < kCutDelayMaxMs);
// Every kTargetedCutEvery-th cycle waits for a segment under construction
// (a `.seg.tmp`, polled every kTargetPollMs) and cuts then; after
// kTargetWaitMsMax without one it cuts anyway.
constexpr uint64_t kTargetedCutEvery = 4;
constexpr uint64_t kTargetPollMs = 1;
constexpr uint64_t kTargetWaitMsMax = 4000;
// Stress runs far longer than any cut delay: every cycle is cut.
constexpr uint64_t kStressDurationS = 60;
static_assert(kCutDelayMaxMs < kStressDurationS * 1000 / 2);
static_assert(kTargetWaitMsMax < kStressDurationS * 1000 / 2);
// After the shutdown, stress fails its next write with EIO and exits; one
// that is still running after this is SIGKILLed.
constexpr uint64_t kStressExitTimeoutMs = 30'000;
constexpr uint64_t kVerifyTimeoutMs = 120'000;
constexpr uint64_t kSegmentTempFilesMax = 1000;

struct FsSpec {
  std::string type;
  uint64_t image_bytes;
  std::vector<std::string> mkfs_args;
};

FsSpec Ext4() { return {"ext4", 256ull << 20, {"-q", "-F"}}; }
// mkfs.xfs (xfsprogs 6.1) refuses images of less than 300 MB.
FsSpec Xfs() { return {"xfs", 320ull << 20, {"-q", "-f"}}; }

struct Totals {
  uint64_t cycles = 0;
  uint64_t cut_mid_run = 0;          // Stress had acknowledged writes when the cut stopped it.
  uint64_t cut_in_open = 0;          // The cut stopped stress before its first write.
  uint64_t cut_in_prepare = 0;       // A .seg.tmp survived the replay: cut during preparation.
  uint64_t targeted = 0;             // Cycles that waited for a segment under construction.
  uint64_t targeted_hit = 0;         // ... and saw one before the cut.
  uint64_t stress_killed = 0;        // Still running kStressExitTimeoutMs after the cut.
  uint64_t stress_ended_clean = 0;   // Exited 0: the cut did not reach it.
  uint64_t stress_other_errors = 0;  // Failed, but not with the cut's EIO.
  std::string first_stress_error;
  VerifyLedger verify;
};

// The operations stress acknowledged in its run ("stress: run 3: 411
// operations acknowledged in ..."); -1 when it printed no such line (it did
// not get past open).
int64_t OperationsInRun(const std::string& out) {
  constexpr std::string_view kLabel = "stress: run ";
  const size_t run = out.find(kLabel);
  if (run == std::string::npos) return -1;
  const size_t colon = out.find(": ", run + kLabel.size());
  if (colon == std::string::npos) return -1;
  return std::strtoll(out.c_str() + colon + 2, nullptr, 10);
}

// Classifies how the cut ended one stress run.
void AccountStress(const ProcessResult& run, Totals* t) {
  if (run.timed_out) ++t->stress_killed;
  if (run.exited && run.code == 0) {
    ++t->stress_ended_clean;
    return;
  }
  if (!run.timed_out && run.err.find("EIO") == std::string::npos) {
    ++t->stress_other_errors;
    if (t->first_stress_error.empty()) t->first_stress_error = run.out + run.err;
  }
  ++(OperationsInRun(run.out) > 0 ? t->cut_mid_run : t->cut_in_open);
}

uint64_t CountSegmentTempFiles(const std::string& db) {
  uint64_t n = 0;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(db, ec);
  for (uint64_t i = 0; !ec && it != std::filesystem::end(it) && i < kSegmentTempFilesMax; ++i) {
    if (it->path().string().ends_with(".seg.tmp")) ++n;
    it.increment(ec);
  }
  return n;
}

// Polls until a segment under construction appears in `db`; false after
// kTargetWaitMsMax without one.
bool WaitForSegmentTempFile(const std::string& db) {
  for (uint64_t poll = 0; poll < kTargetWaitMsMax / kTargetPollMs; ++poll) {
    if (CountSegmentTempFiles(db) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(kTargetPollMs));
  }
  return false;
}

// Why this machine cannot run the suite on `spec`; empty when it can.
std::string Unavailable(const FsSpec& spec) {
  return LoopMountUnavailable({"losetup", "mount", "umount", "mkfs." + spec.type, "xfs_io"});
}

void PrintTotals(const FsSpec& spec, uint64_t seed, const Totals& t) {
  std::ostringstream line;
  line << "powercut " << spec.type << ": seed " << seed << ", cut mid-run " << t.cut_mid_run
       << ", cut in open " << t.cut_in_open << ", targeted cuts " << t.targeted
       << " (saw a segment under construction " << t.targeted_hit
       << "), left a .seg.tmp after replay " << t.cut_in_prepare << ", stress killed after timeout "
       << t.stress_killed << "; cycles " << t.cycles << "; " << t.verify.Summary() << "\n";
  std::fputs(line.str().c_str(), stdout);
  std::fflush(stdout);
}

void RunShutdownCycles(const FsSpec& spec) {
  const uint64_t cycles = TestFlag("cycles", "DMALOG_POWERCUT_CYCLES", kCyclesDefault);
  const uint64_t seed = TestFlag("seed", "DMALOG_POWERCUT_SEED", 1);
  TestDir dir;  // Creates DMALOG_TEST_DATA_DIR, which kDmalogBinary's path goes through.
  ASSERT_TRUE(std::filesystem::exists(kDmalogBinary))
      << kDmalogBinary << " is missing: build the dmalog_cli target first";
  // The expected state stays on the build-tree filesystem, which the cut spares.
  const std::string state = dir.File("expected_state");
  LoopFilesystem fs(dir.File(spec.type + ".img"), dir.File("mnt"), spec.type);
  ASSERT_OK(fs.Create(spec.image_bytes, spec.mkfs_args));
  Status mounted = fs.Mount();
  if (!mounted.ok() && !KernelHasFilesystem(spec.type)) {
    const std::string why = "the kernel has no " + spec.type + " (" + mounted.ToString() + ")";
    if (InCi()) FAIL() << why << "; CI is set, so this is a failure, not a skip";
    GTEST_SKIP() << why;
  }
  ASSERT_OK(mounted);
  const std::string db = fs.mount_point() + "/db";
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + std::hash<std::string>()(spec.type));
  Totals t;
  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    if (cycle % kCyclesPerDatabase == 0) {
      std::filesystem::remove_all(db);
      std::filesystem::remove(state);
      t.verify.StartDatabase();
    }
    const uint64_t delay_ms = kCutDelayMinMs + rng() % (kCutDelayMaxMs - kCutDelayMinMs);
    const std::string out = dir.File("stress.out"), err = dir.File("stress.err");
    const pid_t pid = StartProgram(
        kDmalogBinary, StressArgs(db, state, seed * 1000003 + cycle, kStressDurationS), out, err);
    ASSERT_GT(pid, 0) << "posix_spawn " << kDmalogBinary;
    const bool targeted = cycle % kTargetedCutEvery == kTargetedCutEvery - 1;
    if (targeted) {
      ++t.targeted;
      t.targeted_hit += WaitForSegmentTempFile(db) ? 1 : 0;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    }
    const Status cut = fs.Shutdown();
    const ProcessResult run = WaitProgram(pid, out, err, kStressExitTimeoutMs);
    ASSERT_OK(cut);
    AccountStress(run, &t);
    const Status unmounted = fs.Unmount();
    ASSERT_TRUE(unmounted.ok()) << unmounted.ToString() << " (cycle " << cycle << ")";
    const Status remounted = fs.Mount();
    ASSERT_TRUE(remounted.ok()) << remounted.ToString() << " (cycle " << cycle
                                << ": log replay after the cut)";
    t.cut_in_prepare += CountSegmentTempFiles(db) > 0 ? 1 : 0;
    const ProcessResult v =
        RunDmalog({"--db=" + db, "stress", "--verify", "--expected_state=" + state},
                  dir.path().string(), kVerifyTimeoutMs);
    ++t.cycles;
    if (!t.verify.Account(v)) {
      ADD_FAILURE() << spec.type << " cycle " << cycle << " (cut "
                    << (targeted ? "at a segment under construction"
                                 : "after " + std::to_string(delay_ms) + " ms")
                    << ", seed " << seed << "): verify failed (" << v.code << ")\n"
                    << v.out << v.err << "stress before the cut:\n"
                    << run.out << run.err << "reproduce: " << DMALOG_TEST_DATA_DIR
                    << "/../shutdown_test --gtest_filter=*" << spec.type << "* --seed=" << seed
                    << " --cycles=" << cycle + 1 << "  (DMALOG_KEEP_TEST_DATA=1 keeps the image in "
                    << dir.path().string() << ")";
      break;
    }
  }
  PrintTotals(spec, seed, t);
  EXPECT_EQ(t.cycles, cycles);
  EXPECT_GT(t.cut_mid_run, 0u) << "no cut interrupted stress while it was writing";
  EXPECT_EQ(t.stress_ended_clean, 0u) << "stress ended before the cut: did the shutdown work?";
  EXPECT_EQ(t.stress_other_errors, 0u) << "stress failed without the cut's EIO, first:\n"
                                       << t.first_stress_error;
  ExpectVerifiedClean(t.verify);
}

TEST(PowerCut, Ext4ShutdownCycles) {
  const std::string why = Unavailable(Ext4());
  if (!why.empty() && InCi()) FAIL() << why << "; CI is set, so this is a failure, not a skip";
  if (!why.empty()) GTEST_SKIP() << why;
  RunShutdownCycles(Ext4());
}

TEST(PowerCut, XfsShutdownCycles) {
  const std::string why = Unavailable(Xfs());
  if (!why.empty() && InCi()) FAIL() << why << "; CI is set, so this is a failure, not a skip";
  if (!why.empty()) GTEST_SKIP() << why;
  RunShutdownCycles(Xfs());
}

}  // namespace
}  // namespace dmalog::testing

// Flush-point replay (label "replay"): a stand-in for dm-log-writes.
//
// Record: dmalog_logfs (tests/replay/logfs) exposes disk.img on FUSE and logs
// every write and flush it receives; a buffered loop device over disk.img
// carries an ext4 made by mkfs.ext4; this process runs a short durable
// workload on it through the embedding API (2 shards, 4 MiB segments, so the
// log rolls to new segments), noting when each write was acknowledged.
//
// Replay: the image is rebuilt from zeros in log order; at every flush
// record k it is copied, loop-mounted (ext4 replays its journal) and the
// database opened and scanned. That image is the least a power cut before
// flush k+1 completes can leave (the device may drop every write since
// flush k). So every write acknowledged before flush k+1 arrived must be
// there: its fdatasync completed, so the device flush covering it arrived
// before the acknowledgement, hence it is flush k or earlier, and everything
// the write needed was written before that flush. The one write in flight
// may be there or not; nothing else may differ. See docs/durability.md.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "engine/engine_hooks.h"
#include "tests/nosync_backend.h"
#include "tests/replay/flush_log_util.h"
#include "tests/replay/replay_util.h"
#include "tests/replay/workload_util.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

constexpr char kLogFsBinary[] = DMALOG_LOGFS_BINARY;
constexpr uint64_t kDiskSizeBytes = 128ull << 20;
constexpr uint32_t kShards = 2;
constexpr uint64_t kSegmentSizeBytes = 4ull << 20;  // The minimum: rolls often.
constexpr char kExt4Options[] = "noinit_itable";    // No background inode-table zeroing.
constexpr uint32_t kFailuresPrintedMax = 10;

// Skips (or fails under CI) when the suite cannot run on this machine.
#define REQUIRE_REPLAY_SUPPORT()                                                  \
  do {                                                                            \
    const std::string _why = ReplayUnavailableReason(kLogFsBinary);               \
    if (!_why.empty()) {                                                          \
      if (std::getenv("CI") != nullptr) FAIL() << "flush-point replay: " << _why; \
      GTEST_SKIP() << "flush-point replay: " << _why;                             \
    }                                                                             \
  } while (0)

Options DbOptions(const std::string& db_path) {
  Options o;
  o.db_path = db_path;
  o.shard_count = kShards;
  o.segment_size_bytes = kSegmentSizeBytes;
  o.quiet = true;
  return o;
}

// What the recording left: the log and the workload with its times.
struct Recording {
  FlushLog log;
  std::vector<WorkloadOp> ops;
  uint64_t mkfs_done_ns = 0;
  uint64_t open_start_ns = 0;
  uint64_t open_done_ns = 0;
  uint64_t close_done_ns = 0;
  uint64_t segments = 0;  // Across shards, at the end.
  double seconds = 0;
};

// Makes the ext4, runs the workload and returns the log (see the top). With
// `skip_fdatasync`, the engine's group commits skip their fdatasync.
Result<Recording> Record(const TestDir& dir, const WorkloadOptions& workload, bool skip_fdatasync) {
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(dir.File("fuse"));
  std::filesystem::create_directories(dir.File("mnt"));
  Recording rec;
  {
    Result<std::unique_ptr<LogFs>> fs =
        LogFs::Start(kLogFsBinary, dir.File("backing.img"), dir.File("flush.log"), kDiskSizeBytes,
                     dir.File("fuse"), dir.File("logfs.stderr"));
    if (!fs.ok()) return fs.status();
    Result<std::unique_ptr<LoopDevice>> loop = LoopDevice::Attach((*fs)->disk_path());
    if (!loop.ok()) return loop.status();
    DMALOG_RETURN_IF_ERROR(
        RunCommand({"mkfs.ext4", "-q", "-F", "-b", "4096", "-E",
                    "nodiscard,lazy_itable_init=1,lazy_journal_init=1", (*loop)->path()},
                   dir.File("mkfs.out")));
    rec.mkfs_done_ns = MonotonicNowNs();
    Result<std::unique_ptr<MountPoint>> mnt =
        MountPoint::Mount((*loop)->path(), dir.File("mnt"), "ext4", kExt4Options);
    if (!mnt.ok()) return mnt.status();
    rec.open_start_ns = MonotonicNowNs();
    engine::EngineHooks hooks;
    if (skip_fdatasync) {
      hooks.wrap_backend = [](std::unique_ptr<io::Backend> inner) -> std::unique_ptr<io::Backend> {
        return std::make_unique<NoSyncBackend>(std::move(inner));
      };
    }
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(DbOptions(dir.File("mnt/db")), hooks);
    if (!db.ok()) return db.status().WithContext("Engine::Open on the logged ext4");
    rec.open_done_ns = MonotonicNowNs();
    Result<std::vector<WorkloadOp>> ops = RunWorkload(db->get(), PlanWorkload(workload));
    if (!ops.ok()) return ops.status();
    rec.ops = std::move(*ops);
    for (const ShardStats& shard : (*db)->Stats().shards) rec.segments += shard.segments;
    DMALOG_RETURN_IF_ERROR((*db)->Close());
    rec.close_done_ns = MonotonicNowNs();
    DMALOG_RETURN_IF_ERROR((*mnt)->Unmount());
    DMALOG_RETURN_IF_ERROR((*loop)->Detach());
    DMALOG_RETURN_IF_ERROR((*fs)->Stop());
  }
  Result<FlushLog> log = ReadFlushLog(dir.File("flush.log"));
  if (!log.ok()) return log.status();
  rec.log = std::move(*log);
  rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rec;
}

struct ReplayOptions {
  // The image at flush point k is checked against the writes acknowledged
  // before flush point k + 1 + lost_flush_intervals arrived (or the end of
  // the log). 0 is the real check; 1 checks the image as if the device had
  // dropped the writes of the interval before flush k + 1 (that flush lost).
  size_t lost_flush_intervals = 0;
  uint64_t flush_points_max = 0;  // 0: every flush point.
  bool stop_at_first_failure = false;
};

struct ReplayResult {
  uint64_t flush_points = 0;   // In the log.
  uint64_t replayed = 0;       // Mounted and checked.
  uint64_t before_fs = 0;      // Inside mkfs: no filesystem yet, not replayed.
  uint64_t before_open = 0;    // Filesystem made, database not opened yet.
  uint64_t during_open = 0;    // Engine::Open (database creation) in progress.
  uint64_t acked_checked = 0;  // Sum over flush points of acknowledged writes checked.
  uint64_t failures = 0;
  std::vector<std::string> messages;  // The first kFailuresPrintedMax failures.
  double seconds = 0;
  // Where the time went: copying images, loop + mount, open + scan + close,
  // unmount + detach.
  double copy_s = 0, mount_s = 0, verify_s = 0, unmount_s = 0;
};

// Seconds since `*t`, and moves `*t` to now.
double Lap(std::chrono::steady_clock::time_point* t) {
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - *t).count();
  *t = now;
  return s;
}

// Mounts a copy of the image and checks the database against `allowed`.
// `r` (not owned) gets the times.
Status CheckFlushPoint(const TestDir& dir, ImageBuilder& image, const Options& options,
                       const std::vector<const Model*>& allowed, ReplayResult* r) {
  auto t = std::chrono::steady_clock::now();
  const std::string scratch = dir.File("scratch.img");
  DMALOG_RETURN_IF_ERROR(image.CopyTo(scratch));
  r->copy_s += Lap(&t);
  Status s;
  {
    Result<std::unique_ptr<LoopDevice>> loop = LoopDevice::Attach(scratch);
    if (!loop.ok()) return loop.status();
    Result<std::unique_ptr<MountPoint>> mnt =
        MountPoint::Mount((*loop)->path(), dir.File("replay"), "ext4", kExt4Options);
    if (!mnt.ok()) return mnt.status();
    r->mount_s += Lap(&t);
    s = VerifyDatabase(options, allowed);
    r->verify_s += Lap(&t);
    Status u = (*mnt)->Unmount();
    if (s.ok()) s = u;
    Status d = (*loop)->Detach();
    if (s.ok()) s = d;
  }
  std::filesystem::remove(scratch);
  r->unmount_s += Lap(&t);
  return s;
}

Result<ReplayResult> Replay(const TestDir& dir, const Recording& rec, const ReplayOptions& ro) {
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(dir.File("replay"));
  Result<std::unique_ptr<ImageBuilder>> image =
      ImageBuilder::Create(&rec.log, dir.File("work.img"));
  if (!image.ok()) return image.status();
  ReplayResult r;
  const std::vector<size_t>& flushes = rec.log.flushes;
  r.flush_points = flushes.size();
  const uint64_t stride =
      ro.flush_points_max == 0 ? 1 : std::max<uint64_t>(1, flushes.size() / ro.flush_points_max);
  // When each flush arrived, then the end of the log (every write is then
  // acknowledged and closed).
  std::vector<uint64_t> arrival_ns;
  for (size_t f : flushes) arrival_ns.push_back(rec.log.records[f].time_ns);
  arrival_ns.push_back(UINT64_MAX);
  const Model empty;
  Model acked;  // The state after the first `acked_count` operations.
  size_t acked_count = 0;
  for (size_t m = 0; m + 1 + ro.lost_flush_intervals < arrival_ns.size(); m += stride) {
    // The image is the disk when flush point m arrived; the writes checked
    // are those acknowledged before the next one (see the top).
    const uint64_t image_ns = arrival_ns[m];
    const uint64_t t_ns = arrival_ns[m + 1 + ro.lost_flush_intervals];
    if (image_ns <= rec.mkfs_done_ns) {
      r.before_fs++;
      continue;
    }
    DMALOG_RETURN_IF_ERROR((*image)->ApplyUntil(flushes[m]));
    Options options = DbOptions(dir.File("replay/db"));
    std::vector<const Model*> allowed = {&empty};
    Model in_flight;
    if (t_ns < rec.open_start_ns) {
      r.before_open++;
    } else if (t_ns < rec.open_done_ns) {
      r.during_open++;
    } else {
      options.create_if_missing = false;  // It was created: it must be there.
      while (acked_count < rec.ops.size() && rec.ops[acked_count].ack_ns < t_ns) {
        acked.Apply(rec.ops[acked_count++]);
      }
      allowed = {&acked};
      if (acked_count < rec.ops.size() && rec.ops[acked_count].issue_ns < t_ns) {
        in_flight = acked;
        in_flight.Apply(rec.ops[acked_count]);
        allowed.push_back(&in_flight);
      }
      r.acked_checked += acked_count;
    }
    const Status s = CheckFlushPoint(dir, **image, options, allowed, &r);
    r.replayed++;
    if (!s.ok()) {
      r.failures++;
      if (r.messages.size() < kFailuresPrintedMax) {
        r.messages.push_back("flush point " + std::to_string(m) + " (log record " +
                             std::to_string(flushes[m]) + ", " + std::to_string(acked_count) +
                             " writes acknowledged): " + s.ToString());
      }
      if (ro.stop_at_first_failure) break;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

void PrintSummary(const char* name, const Recording& rec, const ReplayResult& r) {
  std::printf(
      "%s: log records %zu (writes %llu, %.1f MiB; zero ranges %llu), flush points %llu, "
      "workload writes %zu, segments %llu, recorded in %.1f s\n",
      name, rec.log.records.size(), static_cast<unsigned long long>(rec.log.writes),
      rec.log.write_bytes / 1048576.0, static_cast<unsigned long long>(rec.log.zero_ranges),
      static_cast<unsigned long long>(r.flush_points), rec.ops.size(),
      static_cast<unsigned long long>(rec.segments), rec.seconds);
  std::printf(
      "%s: flush points replayed %llu (inside mkfs, not replayed %llu; before Engine::Open %llu; "
      "during Engine::Open %llu), acknowledged writes checked %llu, failures %llu, "
      "%.1f s (%.0f ms a flush point)\n",
      name, static_cast<unsigned long long>(r.replayed),
      static_cast<unsigned long long>(r.before_fs), static_cast<unsigned long long>(r.before_open),
      static_cast<unsigned long long>(r.during_open),
      static_cast<unsigned long long>(r.acked_checked), static_cast<unsigned long long>(r.failures),
      r.seconds, r.replayed ? 1000.0 * r.seconds / r.replayed : 0.0);
  std::printf(
      "%s: time copying %.1f s, mounting %.1f s, open+scan+close %.1f s, unmounting %.1f s\n", name,
      r.copy_s, r.mount_s, r.verify_s, r.unmount_s);
  for (const std::string& m : r.messages) std::printf("%s: FAILED %s\n", name, m.c_str());
  std::fflush(stdout);
}

WorkloadOptions Workload() {
  WorkloadOptions w;
  w.ops = static_cast<uint32_t>(ReplayFlag("ops", "DMALOG_REPLAY_OPS", 160));
  w.seed = ReplayFlag("seed", "DMALOG_REPLAY_SEED", 7);
  w.keys = static_cast<uint32_t>(ReplayFlag("keys", "DMALOG_REPLAY_KEYS", 8));
  return w;
}

TEST(FlushReplay, EveryFlushPointKeepsEveryAcknowledgedWrite) {
  REQUIRE_REPLAY_SUPPORT();
  TestDir dir;
  Result<Recording> rec = Record(dir, Workload(), /*skip_fdatasync=*/false);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ReplayOptions ro;
  ro.flush_points_max = ReplayFlag("flush_points_max", "DMALOG_REPLAY_FLUSH_POINTS_MAX", 0);
  Result<ReplayResult> r = Replay(dir, *rec, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  PrintSummary("replay", *rec, *r);
  EXPECT_GT(rec->segments, kShards * 2) << "the workload should roll segments";
  EXPECT_GT(r->acked_checked, 0u);
  std::string failed;
  for (const std::string& m : r->messages) failed += m + "\n";
  EXPECT_EQ(r->failures, 0u) << failed;
}

// The checker must see loss, two ways. A build whose group commits skip
// their fdatasync (the bug this suite exists for) must fail some flush point.
TEST(FlushReplay, SkippedGroupCommitFdatasyncIsCaught) {
  REQUIRE_REPLAY_SUPPORT();
  TestDir dir;
  Result<Recording> rec = Record(dir, Workload(), /*skip_fdatasync=*/true);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ReplayOptions ro;
  ro.stop_at_first_failure = true;
  Result<ReplayResult> r = Replay(dir, *rec, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  PrintSummary("replay (group-commit fdatasync skipped)", *rec, *r);
  ASSERT_GE(r->failures, 1u) << "a missing fdatasync went unnoticed";
  EXPECT_NE(r->messages[0].find("Corruption: found"), std::string::npos) << r->messages[0];
}

// And a device that drops the writes of one flush interval (as if that
// flush were lost) must fail some flush point.
TEST(FlushReplay, LostFlushIntervalIsCaught) {
  REQUIRE_REPLAY_SUPPORT();
  TestDir dir;
  Result<Recording> rec = Record(dir, Workload(), /*skip_fdatasync=*/false);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ReplayOptions ro;
  ro.lost_flush_intervals = 1;
  ro.stop_at_first_failure = true;
  Result<ReplayResult> r = Replay(dir, *rec, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  PrintSummary("replay (one flush interval lost)", *rec, *r);
  ASSERT_GE(r->failures, 1u) << "dropping flushed writes went unnoticed";
  EXPECT_NE(r->messages[0].find("Corruption: found"), std::string::npos) << r->messages[0];
}

}  // namespace
}  // namespace dmalog::testing

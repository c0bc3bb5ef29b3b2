// The engine over io::FaultBackend: crashes with torn and garbage-filled
// unsynced writes while writers are active, injected fdatasync EIO and
// ENOSPC. After every crash the database is reopened with a plain
// Engine::Open, as a restarted process would.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::FaultHarness;
using testing::OpenOrFail;
using testing::SmallDbOptions;
using testing::WaitForSpareSegments;

std::unique_ptr<Engine> OpenWithFaults(const Options& o, FaultHarness& harness) {
  Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

io::CrashOptions TearingCrash(uint64_t seed) {
  io::CrashOptions c;
  c.tear_unsynced_writes = true;
  c.fill = seed % 3 == 0 ? io::UnsyncedFill::kZeros : io::UnsyncedFill::kGarbage;
  c.keep_unsynced_size = seed % 2 == 0;
  return c;
}

// ---------------------------------------------------------------- Batches

constexpr int kBatchKeys = 4;
constexpr int kBatchWriters = 4;
constexpr int kBatchesPerWriterMax = 100000;

std::string BatchKey(int writer, int n, int k) {
  return "{" + std::to_string(writer) + "." + std::to_string(n) + "}:" + std::to_string(k);
}
std::string BatchValue(int writer, int n, int k) {
  const std::string tag =
      std::to_string(writer) + "." + std::to_string(n) + "." + std::to_string(k);
  return tag + std::string(150 + (n * 7 + k * 31) % 200, static_cast<char>('a' + k));
}

struct WriterProgress {
  std::atomic<int> acknowledged{0};  // Batches [0, acknowledged) returned OK.
  std::atomic<int> attempted{0};     // Batches [0, attempted) were submitted.
};

void WriteBatches(Engine* db, int writer, WriterProgress* progress) {
  for (int n = 0; n < kBatchesPerWriterMax; ++n) {
    WriteBatch batch;
    for (int k = 0; k < kBatchKeys; ++k) {
      if (!batch.Put(BatchKey(writer, n, k), BatchValue(writer, n, k)).ok()) return;
    }
    progress->attempted.store(n + 1);
    if (!db->Write({}, batch).ok()) return;
    progress->acknowledged.store(n + 1);
  }
}

// Every acknowledged batch whole; every other attempted batch whole or absent.
void ExpectBatchesAllOrNothing(Engine& db, int writer, const WriterProgress& progress,
                               uint64_t seed) {
  for (int n = 0; n < progress.attempted.load(); ++n) {
    int present = 0;
    for (int k = 0; k < kBatchKeys; ++k) {
      Result<std::string> v = db.Get(BatchKey(writer, n, k));
      if (v.ok()) {
        ++present;
        ASSERT_EQ(*v, BatchValue(writer, n, k)) << "seed " << seed;
      } else {
        ASSERT_TRUE(v.status().IsNotFound()) << v.status().ToString();
      }
    }
    const bool acknowledged = n < progress.acknowledged.load();
    ASSERT_TRUE(present == kBatchKeys || (present == 0 && !acknowledged))
        << "seed " << seed << " writer " << writer << " batch " << n << ": " << present << " of "
        << kBatchKeys << " keys present, acknowledged=" << acknowledged;
  }
}

// True once any writer has a batch acknowledged; false after kFirstAckWait.
bool WaitForFirstAck(const WriterProgress (&progress)[kBatchWriters]) {
  constexpr auto kFirstAckWait = std::chrono::seconds(30);
  const auto deadline = std::chrono::steady_clock::now() + kFirstAckWait;
  // Bounded by the deadline.
  while (std::chrono::steady_clock::now() < deadline) {
    for (const WriterProgress& p : progress) {
      if (p.acknowledged.load() > 0) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(EngineFaultTest, WriteBatchIsAllOrNothingAcrossCrashes) {
  constexpr uint64_t kSeeds = 8;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    testing::TestDir dir;
    const Options o = SmallDbOptions(dir.File("db"), 2);
    std::mt19937_64 rng(seed);
    WriterProgress progress[kBatchWriters];
    {
      FaultHarness harness(seed);
      auto db = OpenWithFaults(o, harness);
      ASSERT_NE(db, nullptr);
      std::vector<std::thread> writers;
      for (int w = 0; w < kBatchWriters; ++w) {
        writers.emplace_back(WriteBatches, db.get(), w, &progress[w]);
      }
      // The crash comes a random time after the first acknowledged batch (not
      // after a fixed time: under ASan on a loaded machine 5 ms acknowledged
      // nothing, and the test then checked nothing).
      EXPECT_TRUE(WaitForFirstAck(progress)) << "seed " << seed << ": no batch acknowledged";
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
      const uint32_t first = static_cast<uint32_t>(rng() % 2);
      for (uint32_t i = 0; i < 2; ++i) {
        Result<io::CrashReport> report = harness.Crash(*db, (first + i) % 2, TearingCrash(seed));
        ASSERT_TRUE(report.ok()) << report.status().ToString();
      }
      for (auto& t : writers) t.join();
      db->Close().IgnoreError();  // The shards are dead: closing may report it.
    }
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr) << "seed " << seed;
    int acknowledged = 0;
    for (int w = 0; w < kBatchWriters; ++w) {
      ExpectBatchesAllOrNothing(*db, w, progress[w], seed);
      acknowledged += progress[w].acknowledged.load();
    }
    EXPECT_GT(acknowledged, 0) << "seed " << seed << ": the crash came before any write";
  }
}

// ---------------------------------------------------------------- Torn writes

constexpr int kPutWriters = 2;
constexpr int kPutsPerWriterMax = 100000;

std::string PutKey(int writer, int n) {
  return "w" + std::to_string(writer) + "." + std::to_string(n);
}
std::string PutValue(int writer, int n) {
  return PutKey(writer, n) + std::string(100 + (n * 131) % 1400, static_cast<char>('A' + n % 26));
}

void WritePuts(Engine* db, int writer, WriterProgress* progress) {
  for (int n = 0; n < kPutsPerWriterMax; ++n) {
    progress->attempted.store(n + 1);
    if (!db->Put({}, PutKey(writer, n), PutValue(writer, n)).ok()) return;
    progress->acknowledged.store(n + 1);
  }
}

void ExpectAcknowledgedPuts(Engine& db, int writer, const WriterProgress& progress, uint64_t seed) {
  for (int n = 0; n < progress.attempted.load(); ++n) {
    Result<std::string> v = db.Get(PutKey(writer, n));
    if (n < progress.acknowledged.load()) {
      ASSERT_TRUE(v.ok()) << "seed " << seed << ": acknowledged " << PutKey(writer, n)
                          << " lost: " << v.status().ToString();
    }
    if (v.ok()) {
      ASSERT_EQ(*v, PutValue(writer, n)) << "seed " << seed;
    }
  }
}

// Even seeds: a write torn at a random sector while writers run, then the
// power loss. Odd seeds: a crash at a random moment, tearing unsynced writes.
TEST(EngineFaultTest, TornInFlightWritesNeverLoseAcknowledgedRecords) {
  constexpr uint64_t kSeeds = 50;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    testing::TestDir dir;
    const Options o = SmallDbOptions(dir.File("db"), 1);
    std::mt19937_64 rng(seed);
    WriterProgress progress[kPutWriters];
    {
      FaultHarness harness(seed);
      auto db = OpenWithFaults(o, harness);
      ASSERT_NE(db, nullptr);
      if (seed % 2 == 0) {
        ASSERT_OK(harness.InjectAt(*db, 0, 1 + rng() % 40,
                                   io::FaultSpec::TornWrite(io::FaultSpec::kRandomSectors)));
      }
      std::vector<std::thread> writers;
      for (int w = 0; w < kPutWriters; ++w)
        writers.emplace_back(WritePuts, db.get(), w, &progress[w]);
      if (seed % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
      if (seed % 2 == 1) {
        Result<io::CrashReport> report = harness.Crash(*db, 0, TearingCrash(seed));
        ASSERT_TRUE(report.ok()) << report.status().ToString();
      }
      for (auto& t : writers) t.join();
      if (seed % 2 == 0) {
        Result<io::CrashReport> report = harness.Crash(*db, 0, TearingCrash(seed));
        ASSERT_TRUE(report.ok()) << report.status().ToString();
      }
      db->Close().IgnoreError();
    }
    {
      auto db = OpenOrFail(o);
      ASSERT_NE(db, nullptr) << "seed " << seed;
      for (int w = 0; w < kPutWriters; ++w) ExpectAcknowledgedPuts(*db, w, progress[w], seed);
      // Writes after the recovered tail survive the next reopen.
      ASSERT_OK(db->Put({}, "after-crash", "x"));
      ASSERT_OK(db->Close());
    }
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr) << "seed " << seed;
    EXPECT_EQ(*db->Get("after-crash"), "x") << "seed " << seed;
    ExpectAcknowledgedPuts(*db, 0, progress[0], seed);
  }
}

// ---------------------------------------------------------------- EIO, ENOSPC

constexpr int kEarlyKeys = 20;

// Opens a one-shard database over a FaultBackend with kEarlyKeys acknowledged keys.
std::unique_ptr<Engine> OpenWithEarlyKeys(const Options& o, FaultHarness& harness) {
  auto db = OpenWithFaults(o, harness);
  if (db == nullptr) return nullptr;
  for (int i = 0; i < kEarlyKeys; ++i) {
    Status s = db->Put({}, PutKey(0, i), PutValue(0, i));
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  WaitForSpareSegments(*db);
  return db;
}

void ExpectEarlyKeys(Engine& db) {
  for (int i = 0; i < kEarlyKeys; ++i) {
    Result<std::string> v = db.Get(PutKey(0, i));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, PutValue(0, i));
  }
}

TEST(EngineFaultTest, FdatasyncEioMakesTheShardReadOnly) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  {
    FaultHarness harness(7);
    auto db = OpenWithEarlyKeys(o, harness);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(harness.InjectAt(*db, 0, 1, io::FaultSpec::Eio(io::OpFilter::kSync)));
    const Status hit = db->Put({}, "hit", "v");
    EXPECT_TRUE(hit.IsIOError()) << hit.ToString();
    EXPECT_NE(hit.message().find("EIO"), std::string::npos) << hit.ToString();
    EXPECT_NE(hit.message().find("fdatasync"), std::string::npos) << hit.ToString();
    // Nothing later is acknowledged; the cause is named.
    for (const char* key : {"later1", "later2"}) {
      const Status later = db->Put({}, key, "v");
      EXPECT_TRUE(later.IsReadOnly()) << later.ToString();
      EXPECT_NE(later.message().find("EIO"), std::string::npos) << later.ToString();
    }
    WriteBatch batch;
    ASSERT_OK(batch.Put("{b}1", "v"));
    EXPECT_TRUE(db->Write({}, batch).IsReadOnly());
    EXPECT_TRUE(db->Get("later1").status().IsNotFound());
    ExpectEarlyKeys(*db);
    const ShardStats stats = db->Stats().shards.at(0);
    EXPECT_NE(stats.read_only_cause.find("EIO"), std::string::npos) << stats.read_only_cause;
    EXPECT_EQ(harness.backend(0)->faults_fired(io::FaultKind::kEIO), 1u);
    db->Close().IgnoreError();
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectEarlyKeys(*db);
  EXPECT_TRUE(db->Get("later1").status().IsNotFound());
  ASSERT_OK(db->Put({}, "after-reopen", "v"));
}

// A flush of writes acknowledged with sync=false fails: the writes are
// lost, so Close must not return OK (it did: the shard's error was not
// reported, and the writes had completed when they were queued).
TEST(EngineFaultTest, CloseReportsAFailedFlushOfUnsyncedWrites) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  FaultHarness harness(13);
  auto db = OpenWithEarlyKeys(o, harness);
  ASSERT_NE(db, nullptr);
  ASSERT_OK(harness.InjectAt(*db, 0, 1, io::FaultSpec::Eio(io::OpFilter::kWrite)));
  ASSERT_OK(db->Put({.sync = false}, "unsynced", "v"));
  const Status closed = db->Close();
  EXPECT_TRUE(closed.IsIOError()) << closed.ToString();
  EXPECT_NE(closed.message().find("EIO"), std::string::npos) << closed.ToString();
  EXPECT_NE(closed.message().find("shard 0 had refused writes since"), std::string::npos)
      << closed.ToString();
}

bool IsDiskFull(const Status& s) {
  const std::string msg(s.message());
  return s.IsNoSpace() || (s.IsReadOnly() && (msg.find("disk full") != std::string::npos ||
                                              msg.find("ENOSPC") != std::string::npos));
}

TEST(EngineFaultTest, InjectedEnospcIsReportedAndEarlierDataSurvives) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  {
    FaultHarness harness(11);
    auto db = OpenWithEarlyKeys(o, harness);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(harness.InjectAt(*db, 0, 1, io::FaultSpec::NoSpace(io::OpFilter::kWrite)));
    const Status full = db->Put({}, "full", "v");
    EXPECT_TRUE(IsDiskFull(full)) << full.ToString();
    EXPECT_NE(full.message().find("disk full"), std::string::npos) << full.ToString();
    const Status later = db->Put({}, "later", "v");
    EXPECT_TRUE(IsDiskFull(later)) << later.ToString();
    ExpectEarlyKeys(*db);
    db->Close().IgnoreError();
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectEarlyKeys(*db);
  ASSERT_OK(db->Put({}, "after-reopen", "v"));
  EXPECT_EQ(*db->Get("after-reopen"), "v");
}

}  // namespace
}  // namespace dmalog

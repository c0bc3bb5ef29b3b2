// A blocking Get reads on its calling thread only when the index shows every
// write on its way (engine/caller_reads.h); these tests fail when a write is
// not announced, when the latch lets a search in during an index change, or
// when the path is taken where it must not be.
#include "engine/caller_reads.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/write_batch.h"
#include "engine/engine_hooks.h"
#include "engine/index.h"
#include "scheduler/executor.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

Options SmallOptions(const std::string& dir) { return testing::SmallDbOptions(dir, 2); }
std::unique_ptr<Engine> OpenOrDie(const Options& o) { return testing::OpenOrFail(o); }

uint64_t GetsOnCaller(Engine& db) {
  uint64_t n = 0;
  for (const ShardStats& s : db.Stats().shards) n += s.gets_on_calling_thread;
  return n;
}

// The unit: what makes TryGet decline, with no engine around it.
TEST(CallerReadsTest, DeclinesWhileAWriteIsOnItsWayOrTheIndexChanges) {
  engine::Index index;
  engine::CallerReads reads(/*enabled=*/true);
  std::optional<Result<std::string>> r = reads.TryGet(index, "k");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->status().IsNotFound());

  reads.WriteComing();
  EXPECT_FALSE(reads.TryGet(index, "k").has_value()) << "a write is not in the index yet";
  reads.WritesSettled(1);
  EXPECT_TRUE(reads.TryGet(index, "k").has_value());

  reads.BeginIndexChange();
  EXPECT_FALSE(reads.TryGet(index, "k").has_value()) << "searched an index being changed";
  reads.EndIndexChange();
  EXPECT_TRUE(reads.TryGet(index, "k").has_value());

  // An entry whose segment was never published takes the executor's path.
  ASSERT_FALSE(index.Put("k", engine::IndexEntry{7, 4096, 100, 1}).has_value());
  EXPECT_FALSE(reads.TryGet(index, "k").has_value());
  EXPECT_EQ(reads.gets(), 3u);

  engine::CallerReads off(/*enabled=*/false);
  EXPECT_FALSE(off.TryGet(index, "absent").has_value());
}

TEST(CallerReadsTest, DurableValuesAreReadOnTheCallingThread) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < 20; ++i)
    ASSERT_OK(db->Put({}, "k" + std::to_string(i), "v" + std::to_string(i)));
  ASSERT_OK(db->Delete({}, "k3"));
  for (int i = 0; i < 20; ++i) {
    Result<std::string> v = db->Get("k" + std::to_string(i));
    if (i == 3) {
      EXPECT_TRUE(v.status().IsNotFound());
    } else {
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(*v, "v" + std::to_string(i));
    }
  }
  EXPECT_EQ(GetsOnCaller(*db), 20u);
  EXPECT_NE(db->Stats().ToString().find("gets read on the calling thread"), std::string::npos);
  ASSERT_OK(db->Close());

  // After a reopen the recovered segments are readable the same way.
  auto again = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(again, nullptr);
  Result<std::string> v = again->Get("k19");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "v19");
  EXPECT_EQ(GetsOnCaller(*again), 1u);
}

TEST(CallerReadsTest, OptionOffPostsEveryGet) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  o.read_on_calling_thread = false;
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ASSERT_OK(db->Put({}, "k", "v"));
  Result<std::string> v = db->Get("k");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "v");
  EXPECT_EQ(GetsOnCaller(*db), 0u);
}

// A sync = false write returns before it is in the index (before it is even
// in the log writer): a get right after it must still see it. Without the
// announcement in the post (Shard::WriteComing) the caller would read the
// old value. (The gets here mostly take the executor's path, as they should:
// a write was just posted.)
TEST(CallerReadsTest, EachThreadReadsItsOwnUnsyncedWrites) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  WriteOptions nosync;
  nosync.sync = false;
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "key-" + std::to_string(t);
      for (int round = 0; round < kRounds; ++round) {
        const std::string want = std::to_string(round);
        // Durable first, so that the index holds an older value to miss.
        if (!db->Put({}, key, "old").ok() || !db->Put(nosync, key, want).ok()) {
          ++failures;
          continue;
        }
        Result<std::string> got = db->Get(key);
        if (!got.ok() || *got != want) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(db->Close());
}

// The other ways a write reaches a shard are announced too: an asynchronous
// write, and a coroutine write on the shard's own executor (DirectCall).
TEST(CallerReadsTest, AsyncAndCoroutineWritesAreSeenByALaterBlockingGet) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    const std::string want = std::to_string(round);
    ASSERT_OK(db->Put({}, "async", "old"));
    db->PutAsync({.sync = false}, "async", want, [](Status s) { ASSERT_OK(s); });
    Result<std::string> got = db->Get("async");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, want) << "round " << round;
  }
  const std::string key = "coroutine";
  struct Progress {
    std::atomic<int> written{-1};  // The task's last acknowledged round.
    std::atomic<int> read{-1};     // The application thread's last checked round.
  } progress;
  struct Writer {
    static Task<void> Run(Engine* db, std::string key, int rounds, Progress* progress) {
      for (int round = 0; round < rounds; ++round) {
        // Named: see engine.h on GCC 12.
        const WriteOptions unsynced{.sync = false};
        const std::string value = std::to_string(round);
        if (!(co_await db->CoPut(unsynced, key, value)).ok()) co_return;
        progress->written.store(round);
        // The application thread reads before the next write.
        for (int wait = 0; wait < 100000 && progress->read.load() < round; ++wait) {
          co_await sched::sleep_for(std::chrono::microseconds(10));
        }
      }
    }
  };
  ASSERT_OK(db->Spawn(db->ShardOf(key), Writer::Run(db.get(), key, kRounds, &progress)));
  for (int round = 0; round < kRounds; ++round) {
    for (int wait = 0; wait < 100000 && progress.written.load() < round; ++wait) {
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    }
    ASSERT_EQ(progress.written.load(), round);
    Result<std::string> got = db->Get(key);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, std::to_string(round));
    progress.read.store(round);
  }
  ASSERT_OK(db->Close());  // The task has ended: Close waits for its calls.
}

// A batch's entry is read from its batch record; a record longer than
// kReadBytesMax takes the executor's path.
TEST(CallerReadsTest, BatchEntriesAndLongRecords) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(batch.Put("{t}" + std::to_string(i), "b" + std::to_string(i)));
  ASSERT_OK(db->Write({}, batch));
  const std::string long_value(engine::CallerReads::kReadBytesMax + 1000, 'L');
  ASSERT_OK(db->Put({}, "long", long_value));
  const uint64_t before = GetsOnCaller(*db);
  for (int i = 0; i < 5; ++i) {
    Result<std::string> got = db->Get("{t}" + std::to_string(i));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, "b" + std::to_string(i));
  }
  EXPECT_EQ(GetsOnCaller(*db), before + 5);
  Result<std::string> got = db->Get("long");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, long_value);
  EXPECT_EQ(GetsOnCaller(*db), before + 5) << "a long record was read on the caller";
}

// A failed flush settles its writes: the caller's path serves the last
// durable values afterwards (a missed settle would turn it off for good),
// and a refused write settles too.
TEST(CallerReadsTest, AfterAFailedFlushGetsStillReadOnTheCallingThread) {
  testing::TestDir dir;
  const Options o = testing::SmallDbOptions(dir.File("db"), 1);
  testing::FaultHarness harness(21);
  engine::EngineHooks hooks = harness.Hooks();
  hooks.keep_reads_on_calling_thread = true;
  Result<std::unique_ptr<Engine>> opened = engine::OpenEngine(o, hooks);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Engine> db = std::move(*opened);
  testing::WaitForSpareSegments(*db);
  ASSERT_OK(db->Put({}, "k", "old"));
  ASSERT_OK(harness.InjectAt(*db, 0, 1, io::FaultSpec::Eio(io::OpFilter::kWrite)));
  EXPECT_TRUE(db->Put({}, "k", "new").IsIOError());
  EXPECT_TRUE(db->Put({}, "k", "refused").IsReadOnly());
  const uint64_t before = GetsOnCaller(*db);
  Result<std::string> got = db->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "old");
  EXPECT_EQ(GetsOnCaller(*db), before + 1) << "the failed or refused write was never settled";
  db->Close().IgnoreError();
}

// Readers on their threads race the executors changing the index: every get
// returns a value at least as new as the last one acknowledged before it
// began. (Under TSan, this is also the latch's race test.)
TEST(CallerReadsTest, ReadersRacingWritersSeeEveryAcknowledgedWrite) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  constexpr int kKeys = 8;
  constexpr int kVersions = 400;
  std::atomic<int> acked[kKeys];
  for (int k = 0; k < kKeys; ++k) {
    acked[k] = 0;
    ASSERT_OK(db->Put({}, "k" + std::to_string(k), "0"));
  }
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int v = 1; v <= kVersions; ++v) {
        for (int k = w; k < kKeys; k += 2) {
          if (!db->Put({}, "k" + std::to_string(k), std::to_string(v)).ok()) ++failures;
          acked[k].store(v);
        }
      }
    });
  }
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; !done.load(); ++i) {
        const int k = (i + r) % kKeys;
        const int floor = acked[k].load();
        Result<std::string> got = db->Get("k" + std::to_string(k));
        if (!got.ok() || std::stoi(*got) < floor) ++failures;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  done.store(true);
  for (size_t i = 2; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(GetsOnCaller(*db), 0u);
  ASSERT_OK(db->Close());
}

// Damage under a record the index names is found by the caller's read: the
// checksum fails, and the error names the segment and the offset.
TEST(CallerReadsTest, DamagedRecordIsCorruptionNamingTheSegment) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  o.shard_count = 1;
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  const std::string value = "a-value-to-find-on-disk-0123456789";
  ASSERT_OK(db->Put({}, "k", value));
  // Find the value's bytes in the segment and flip one of them.
  bool flipped = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir.File("db") + "/shard-000")) {
    if (entry.path().extension() != ".seg") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = bytes.find(value);
    if (at == std::string::npos) continue;
    const int fd = open(entry.path().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const char bad = static_cast<char>(bytes[at] ^ 0x40);
    ASSERT_EQ(pwrite(fd, &bad, 1, static_cast<off_t>(at)), 1);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  Result<std::string> got = db->Get("k");
  ASSERT_TRUE(got.status().IsCorruption()) << got.status().ToString();
  EXPECT_NE(got.status().ToString().find("00000001.seg offset"), std::string::npos)
      << got.status().ToString();
  EXPECT_EQ(GetsOnCaller(*db), 1u);
}

}  // namespace
}  // namespace dmalog

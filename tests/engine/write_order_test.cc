// A thread's writes to one shard take effect in the order it made them, even
// when some of them stall (for batch room or a new segment) and others would
// fit at once: the last write to a key wins, now and after a reopen.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/task.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SmallDbOptions;

constexpr int kKeys = 40;
constexpr int kRoundsPerKey = 6;
// Larger than half the flush buffer: a batch holds one at most, so most of
// them stall, while the small ones after them would fit at once.
constexpr size_t kLargeValueBytes = 600 << 10;

std::string Key(int i) { return "key" + std::to_string(i); }

// Round r of key i: large on even rounds, small on odd ones.
std::string Value(int i, int round) {
  const std::string tag = std::to_string(i) + "." + std::to_string(round);
  if (round % 2 == 1) return tag;
  std::string v(kLargeValueBytes, 'L');
  v.replace(0, tag.size(), tag);
  return v;
}

void ExpectLastWritesWin(Engine& db) {
  for (int i = 0; i < kKeys; ++i) {
    Result<std::string> v = db.Get(Key(i));
    ASSERT_TRUE(v.ok()) << Key(i) << ": " << v.status().ToString();
    EXPECT_EQ(v->substr(0, 16), Value(i, kRoundsPerKey - 1).substr(0, 16)) << Key(i);
  }
}

// Opens the database, runs `write` (which makes its writes and waits for
// their callbacks), checks that the last writes won, closes, and checks
// again after a reopen.
template <typename WriteFn>
void ExpectLastWritesWinAcrossReopen(const Options& o, WriteFn write) {
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ASSERT_NO_FATAL_FAILURE(write(*db));
    ExpectLastWritesWin(*db);
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectLastWritesWin(*db);
}

class WriteOrderTest : public ::testing::TestWithParam<bool> {};

TEST_P(WriteOrderTest, AsyncWritesOfOneThreadKeepTheirOrder) {
  const bool sync = GetParam();
  testing::TestDir dir;
  ExpectLastWritesWinAcrossReopen(SmallDbOptions(dir.File("db"), 1), [sync](Engine& db) {
    std::atomic<int> done{0};
    std::atomic<int> failed{0};
    for (int round = 0; round < kRoundsPerKey; ++round) {
      for (int i = 0; i < kKeys; ++i) {
        db.PutAsync({.sync = sync}, Key(i), Value(i, round), [&](Status s) {
          if (!s.ok()) failed.fetch_add(1);
          done.fetch_add(1, std::memory_order_release);
        });
      }
    }
    constexpr int kWrites = kKeys * kRoundsPerKey;
    for (int spins = 0; done.load(std::memory_order_acquire) < kWrites && spins < 60000; ++spins) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(done.load(), kWrites);
    ASSERT_EQ(failed.load(), 0);
  });
}

// Sync waits for the stalled writes queued before it, not for a moment with
// none stalled: a writer that keeps stalling writes queued cannot starve it.
TEST(WriteOrderStallTest, SyncIsNotStarvedByLaterStalledWrites) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 1));
  ASSERT_NE(db, nullptr);
  constexpr int kInFlightMax = 8;
  // Far more than Sync needs to wait for; the writer stops there at the latest.
  constexpr int kWritesMax = 400;
  std::atomic<bool> synced{false};
  std::atomic<int> in_flight{0};
  std::atomic<int> failed{0};
  int written = 0;
  std::thread writer([&] {
    const std::string large(kLargeValueBytes, 'S');
    while (!synced.load(std::memory_order_acquire) && written < kWritesMax) {
      if (in_flight.load(std::memory_order_acquire) >= kInFlightMax) {
        std::this_thread::yield();
        continue;
      }
      in_flight.fetch_add(1);
      db->PutAsync({.sync = false}, Key(written % kKeys), large, [&](Status s) {
        if (!s.ok()) failed.fetch_add(1);
        in_flight.fetch_sub(1, std::memory_order_release);
      });
      ++written;
    }
  });
  // Let the writer fill the stalled queue first.
  for (int spins = 0; in_flight.load() < kInFlightMax && spins < 10000; ++spins) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  ASSERT_OK(db->Sync());
  synced.store(true, std::memory_order_release);
  writer.join();
  EXPECT_LT(written, kWritesMax) << "Sync returned only after the writer stopped";
  ASSERT_OK(db->Close());
  EXPECT_EQ(failed.load(), 0);
}

// A task on an executor: for each round, PutAsync (not awaited, and large,
// so it stalls) then an awaited CoPut of the next round to the same key, and
// a CoGet that must see it. Keys on both shards, so the calls cross shards
// as well as staying on the task's own.
Task<void> MixAsyncAndCoroutineWrites(Engine* db, bool sync, std::atomic<int>* callbacks,
                                      std::promise<std::string>* done) {
  std::string log;
  const WriteOptions options{.sync = sync};
  for (int round = 0; round + 1 < kRoundsPerKey; round += 2) {
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = Key(i);
      db->PutAsync(options, key, Value(i, round), [callbacks](Status s) {
        if (s.ok()) callbacks->fetch_add(1);
      });
      const std::string next = Value(i, round + 1);
      const Status s = co_await db->CoPut(options, key, next);
      if (!s.ok()) log += "CoPut " + key + ": " + s.ToString() + "; ";
      Result<std::string> v = co_await db->CoGet(key);
      if (!v.ok() || *v != next) log += "CoGet " + key + " missed its CoPut; ";
    }
  }
  done->set_value(log);
}

TEST_P(WriteOrderTest, TaskAsyncAndCoroutineWritesKeepTheirOrder) {
  const bool sync = GetParam();
  testing::TestDir dir;
  ExpectLastWritesWinAcrossReopen(SmallDbOptions(dir.File("db"), 2), [sync](Engine& db) {
    std::atomic<int> callbacks{0};
    std::promise<std::string> done;
    ASSERT_OK(db.Spawn(0, MixAsyncAndCoroutineWrites(&db, sync, &callbacks, &done)));
    EXPECT_EQ(done.get_future().get(), "");
    ASSERT_OK(db.Sync());
    EXPECT_EQ(callbacks.load(), kKeys * kRoundsPerKey / 2);
  });
}

INSTANTIATE_TEST_SUITE_P(SyncAndUnsynced, WriteOrderTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Sync" : "Unsynced";
                         });

}  // namespace
}  // namespace dmalog

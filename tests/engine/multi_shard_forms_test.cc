// The three forms of the calls that span shards (Scan, Sync, Stats) and of
// Tail (include/dmalog/engine.h): the asynchronous and coroutine forms give
// what the blocking form gives, Scan merges any number of shards in key
// order under its limits, and a form called where it cannot run says so.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/task.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SmallDbOptions;

using Model = std::map<std::string, std::string>;

// Writes `count` random keys (some deleted again) and returns what is left.
Model WriteRandomKeys(Engine& db, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  Model model;
  for (int i = 0; i < count; ++i) {
    const std::string key = "k" + std::to_string(rng() % 100000);
    const std::string value = "v" + std::to_string(i);
    EXPECT_OK(db.Put({.sync = i % 8 == 0}, key, value));
    model[key] = value;
    if (i % 11 == 0) {
      EXPECT_OK(db.Delete({.sync = false}, key));
      model.erase(key);
    }
  }
  EXPECT_OK(db.Sync());
  return model;
}

// What Scan must return for `o`, from the model.
std::vector<KeyValue> Expected(const Model& model, const ScanOptions& o) {
  std::vector<KeyValue> out;
  for (auto it = model.lower_bound(o.from); it != model.end() && out.size() < o.max_keys; ++it) {
    if (!o.to.empty() && it->first >= o.to) break;
    out.push_back(KeyValue{it->first, it->second});
  }
  return out;
}

std::vector<ScanOptions> ScanCases() {
  return {ScanOptions{.from = "", .to = "", .max_keys = 1000000},
          ScanOptions{.from = "", .to = "", .max_keys = 7},
          ScanOptions{.from = "k3", .to = "k6", .max_keys = 1000000},
          ScanOptions{.from = "k5", .to = "", .max_keys = 100},
          ScanOptions{.from = "k9", .to = "k1", .max_keys = 10},  // Empty range.
          ScanOptions{.from = "", .to = "", .max_keys = 0}};
}

Result<std::vector<KeyValue>> ScanAsyncAndWait(Engine& db, const ScanOptions& o) {
  std::promise<Result<std::vector<KeyValue>>> got;
  db.ScanAsync(o, [&got](Result<std::vector<KeyValue>> r) { got.set_value(std::move(r)); });
  return got.get_future().get();
}

class MultiShardScanTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MultiShardScanTest, BlockingAndAsyncScansMergeEveryShardInKeyOrder) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), GetParam()));
  ASSERT_NE(db, nullptr);
  const Model model = WriteRandomKeys(*db, 3000, GetParam());
  for (const ScanOptions& o : ScanCases()) {
    SCOPED_TRACE("from '" + o.from + "' to '" + o.to + "' max " + std::to_string(o.max_keys));
    const std::vector<KeyValue> want = Expected(model, o);
    Result<std::vector<KeyValue>> blocking = db->Scan(o);
    ASSERT_OK(blocking.status());
    EXPECT_EQ(*blocking, want);
    Result<std::vector<KeyValue>> async = ScanAsyncAndWait(*db, o);
    ASSERT_OK(async.status());
    EXPECT_EQ(*async, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, MultiShardScanTest, ::testing::Values(1u, 2u, 5u));

TEST(MultiShardFormsTest, AsyncTailSyncAndStatsMatchTheBlockingForms) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  const Model model = WriteRandomKeys(*db, 500, 7);
  for (uint32_t shard = 0; shard < 2; ++shard) {
    const TailOptions o{.shard = shard, .from_sequence = 3, .max_records = 50};
    std::promise<Result<std::vector<LogRecord>>> got;
    db->TailAsync(o, [&got](Result<std::vector<LogRecord>> r) { got.set_value(std::move(r)); });
    Result<std::vector<LogRecord>> async = got.get_future().get();
    Result<std::vector<LogRecord>> blocking = db->Tail(o);
    ASSERT_OK(async.status());
    ASSERT_OK(blocking.status());
    ASSERT_EQ(async->size(), 50u);
    ASSERT_EQ(async->size(), blocking->size());
    for (size_t i = 0; i < async->size(); ++i) {
      EXPECT_EQ((*async)[i].sequence, (*blocking)[i].sequence);
      EXPECT_EQ((*async)[i].key, (*blocking)[i].key);
    }
    EXPECT_EQ(async->front().sequence, 3u);
  }
  std::promise<Result<std::vector<LogRecord>>> bad;
  db->TailAsync({.shard = 2},
                [&bad](Result<std::vector<LogRecord>> r) { bad.set_value(std::move(r)); });
  Result<std::vector<LogRecord>> refused = bad.get_future().get();
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_NE(refused.status().ToString().find("has 2 shards"), std::string::npos);

  // A sync=false put, then SyncAsync: durable once it calls back.
  ASSERT_OK(db->Put({.sync = false}, "late", "x"));
  std::promise<Status> synced;
  db->SyncAsync([&synced](Status s) { synced.set_value(std::move(s)); });
  EXPECT_OK(synced.get_future().get());

  std::promise<EngineStats> stats;
  db->StatsAsync([&stats](EngineStats s) { stats.set_value(std::move(s)); });
  const EngineStats async_stats = stats.get_future().get();
  const EngineStats blocking_stats = db->Stats();
  ASSERT_EQ(async_stats.shards.size(), 2u);
  EXPECT_EQ(async_stats.io_backend, blocking_stats.io_backend);
  uint64_t keys = 0;
  for (const ShardStats& s : async_stats.shards) keys += s.keys;
  EXPECT_EQ(keys, model.size() + 1);
  ASSERT_OK(db->Close());

  // After Close every asynchronous form still calls back, at once.
  std::promise<Result<std::vector<KeyValue>>> closed_scan;
  db->ScanAsync({}, [&](Result<std::vector<KeyValue>> r) { closed_scan.set_value(std::move(r)); });
  EXPECT_TRUE(closed_scan.get_future().get().status().IsAborted());
  std::promise<Status> closed_sync;
  db->SyncAsync([&](Status s) { closed_sync.set_value(std::move(s)); });
  EXPECT_TRUE(closed_sync.get_future().get().IsAborted());
}

// A thread's ScanAsync, TailAsync and StatsAsync take effect between its earlier and
// its later writes, even when the earlier ones stall (values larger than
// half the batch buffer) and the later ones would fit at once: each scan
// gives the model as it was when the scan was issued, and each tail ends at
// the last write issued before it.
TEST(MultiShardFormsTest, AsyncScanAndTailTakeEffectInTheThreadsOrder) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  constexpr int kRounds = 24;
  const ScanOptions all{.from = "", .to = "", .max_keys = 1000};
  Model model;
  std::vector<std::vector<KeyValue>> want_scans;
  std::vector<std::promise<Result<std::vector<KeyValue>>>> scans(kRounds);
  std::vector<std::promise<Result<std::vector<LogRecord>>>> tails(kRounds);
  std::vector<std::promise<EngineStats>> stats(kRounds);
  std::vector<std::promise<Status>> writes(3 * kRounds);
  int writes_issued = 0;
  const auto write_done = [&](int i) {
    return [&writes, i](Status s) { writes[i].set_value(std::move(s)); };
  };
  for (int r = 0; r < kRounds; ++r) {
    // All keys share the hash tag {t}: one shard, whose sequence numbers
    // count the writes.
    const std::string key = "{t}" + std::to_string(r % 5);
    const std::string value =
        r % 3 == 0 ? std::string(600 << 10, 'a' + r % 26) : "v" + std::to_string(r);
    db->PutAsync({.sync = r % 2 == 0}, key, value, write_done(writes_issued++));
    model[key] = value;
    want_scans.push_back(Expected(model, all));
    db->ScanAsync(all, [&scans, r](Result<std::vector<KeyValue>> got) {
      scans[r].set_value(std::move(got));
    });
    const TailOptions tail{.shard = db->ShardOf("{t}"), .from_sequence = 1, .max_records = 1000};
    db->TailAsync(tail, [&tails, r](Result<std::vector<LogRecord>> got) {
      tails[r].set_value(std::move(got));
    });
    db->StatsAsync([&stats, r](EngineStats got) { stats[r].set_value(std::move(got)); });
    // Later writes, which the scan, the tail and the stats must not see.
    db->DeleteAsync({.sync = false}, key, write_done(writes_issued++));
    db->PutAsync({.sync = false}, key, value, write_done(writes_issued++));
  }
  for (int r = 0; r < kRounds; ++r) {
    SCOPED_TRACE("round " + std::to_string(r));
    Result<std::vector<KeyValue>> got = scans[r].get_future().get();
    ASSERT_OK(got.status());
    EXPECT_EQ(got->size(), want_scans[r].size());
    EXPECT_TRUE(*got == want_scans[r]) << "the scan saw another state than at its issue";
    Result<std::vector<LogRecord>> tail = tails[r].get_future().get();
    ASSERT_OK(tail.status());
    ASSERT_EQ(tail->size(), static_cast<size_t>(3 * r + 1)) << "writes issued before the tail";
    EXPECT_EQ(tail->back().type, LogRecord::Type::kPut);
    EXPECT_EQ(tail->back().sequence, static_cast<uint64_t>(3 * r + 1));
    const EngineStats s = stats[r].get_future().get();
    ASSERT_EQ(s.shards.size(), 2u);
    EXPECT_EQ(s.shards[db->ShardOf("{t}")].last_sequence, static_cast<uint64_t>(3 * r + 1));
  }
  for (int i = 0; i < writes_issued; ++i) EXPECT_OK(writes[i].get_future().get());
}

// Runs on shard `home`'s executor, as an application's own task would.
Task<void> CoroutineClient(Engine* db, const Model* model, std::promise<std::string>* done) {
  std::string log;
  Status s = co_await db->CoPut({.sync = false}, "zz-co", "1");
  if (!s.ok()) log += "put: " + s.ToString() + "; ";
  s = co_await db->CoSync();
  if (!s.ok()) log += "sync: " + s.ToString() + "; ";
  const ScanOptions all{.from = "", .to = "", .max_keys = 1000000};
  Result<std::vector<KeyValue>> kvs = co_await db->CoScan(all);
  Model want = *model;
  want["zz-co"] = "1";
  if (!kvs.ok()) {
    log += "scan: " + kvs.status().ToString() + "; ";
  } else if (*kvs != Expected(want, all)) {
    log += "scan gave " + std::to_string(kvs->size()) + " keys, want " +
           std::to_string(want.size()) + "; ";
  }
  for (uint32_t shard = 0; shard < db->shard_count(); ++shard) {
    const TailOptions o{.shard = shard, .from_sequence = 1, .max_records = 5};
    Result<std::vector<LogRecord>> tail = co_await db->CoTail(o);
    if (!tail.ok() || tail->size() != 5) log += "tail of shard " + std::to_string(shard) + "; ";
  }
  WriteBatch empty;
  s = co_await db->CoWrite({}, empty);
  if (!s.ok()) log += "empty batch: " + s.ToString() + "; ";
  WriteBatch spanning;  // Two keys on different shards.
  std::string other = "x0";
  for (int i = 1; db->ShardOf(other) == db->ShardOf("x"); ++i) other = "x" + std::to_string(i);
  if (!spanning.Put("x", "1").ok() || !spanning.Put(other, "2").ok()) log += "batch put; ";
  s = co_await db->CoWrite({}, spanning);
  if (!s.IsInvalidArgument()) log += "spanning batch: " + s.ToString() + "; ";
  Result<EngineStats> stats = co_await db->CoStats();
  if (!stats.ok() || stats->shards.size() != db->shard_count()) log += "stats; ";
  done->set_value(log);
}

TEST(MultiShardFormsTest, CoroutineFormsSpanEveryShard) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  const Model model = WriteRandomKeys(*db, 400, 3);
  for (uint32_t home = 0; home < 2; ++home) {
    SCOPED_TRACE("task on shard " + std::to_string(home));
    std::promise<std::string> done;
    ASSERT_OK(db->Spawn(home, CoroutineClient(db.get(), &model, &done)));
    EXPECT_EQ(done.get_future().get(), "");
  }
}

// Chained from callbacks: each ScanAsync's callback starts the next page,
// on an executor thread, until the whole key space has been read.
struct Pager {
  Engine* db;
  std::vector<KeyValue> seen;
  std::promise<Status> done;
  void Next(std::string from) {
    db->ScanAsync({.from = from, .to = "", .max_keys = 37},
                  [this](Result<std::vector<KeyValue>> page) {
                    if (!page.ok()) return done.set_value(page.status());
                    if (page->empty()) return done.set_value(Status::OK());
                    std::string after = page->back().key + '\0';
                    seen.insert(seen.end(), page->begin(), page->end());
                    Next(std::move(after));
                  });
  }
};

TEST(MultiShardFormsTest, ScansChainFromCallbacks) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  const Model model = WriteRandomKeys(*db, 1000, 11);
  Pager pager{db.get(), {}, {}};
  pager.Next("");
  EXPECT_OK(pager.done.get_future().get());
  EXPECT_EQ(pager.seen, Expected(model, ScanOptions{.from = "", .to = "", .max_keys = 1000000}));
}

}  // namespace
}  // namespace dmalog

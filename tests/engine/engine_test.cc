#include "dmalog/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/request_path.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

Options SmallOptions(const std::string& dir) {
  Options o;
  o.db_path = dir;
  o.shard_count = 2;
  o.segment_size_bytes = 4u << 20;  // The smallest segment: rolls often.
  return o;
}

std::unique_ptr<Engine> OpenOrDie(const Options& o) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

// Waits (bounded) until shard 0 has `count` segments; returns how many it has.
uint64_t WaitForSegments(Engine& db, uint64_t count) {
  uint64_t now = 0;
  for (int step = 0; step < 10'000; ++step) {
    now = db.Stats().shards.at(0).segments;
    if (now >= count) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return now;
}

// Options::segments_preallocated spares are kept ahead of the active
// segment, and replaced as writing rolls into them; 0 is refused.
TEST(EngineTest, SegmentsPreallocatedKeepsThatManySpares) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  o.shard_count = 1;
  o.segments_preallocated = 0;
  EXPECT_TRUE(Engine::Open(o).status().IsInvalidArgument());
  o.segments_preallocated = 3;
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(WaitForSegments(*db, 4), 4u);  // The active one and 3 spares.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(db->Stats().shards.at(0).segments, 4u) << "more spares than asked for";
  // Fill a bit more than one segment: writing rolls into a spare.
  const std::string value(64u << 10, 'v');
  for (int i = 0; i < 70; ++i) ASSERT_OK(db->Put({}, "k" + std::to_string(i), value));
  EXPECT_EQ(WaitForSegments(*db, 5), 5u);
  ASSERT_OK(db->Close());
}

TEST(EngineTest, PutGetDeleteSurviveReopen) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Put({}, "a", "1"));
    ASSERT_OK(db->Put({}, "b", "2"));
    ASSERT_OK(db->Put({}, "a", "3"));
    ASSERT_OK(db->Delete({}, "b"));
    EXPECT_EQ(*db->Get("a"), "3");
    EXPECT_TRUE(db->Get("b").status().IsNotFound());
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*db->Get("a"), "3");
  EXPECT_TRUE(db->Get("b").status().IsNotFound());
  EXPECT_TRUE(db->Get("never").status().IsNotFound());
}

TEST(EngineTest, SixteenWritersThenScanAndTailAcrossRestart) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  constexpr int kThreads = 16;
  constexpr int kPerThread = 300;
  std::map<std::string, std::string> model;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      model["k" + std::to_string(t) + "." + std::to_string(i)] =
          std::string(100 + (i % 50), static_cast<char>('a' + t));
    }
  }
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string key = "k" + std::to_string(t) + "." + std::to_string(i);
          if (!db->Put({}, key, model[key]).ok()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(failures.load(), 0);
    EngineStats stats = db->Stats();
    uint64_t flushes = 0, records = 0;
    for (const ShardStats& s : stats.shards) {
      flushes += s.flushes;
      records += s.records_flushed;
    }
    EXPECT_EQ(records, static_cast<uint64_t>(kThreads * kPerThread));
    std::printf("group commit: %llu records in %llu flushes\n",
                static_cast<unsigned long long>(records), static_cast<unsigned long long>(flushes));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ScanOptions all;
  all.max_keys = 1u << 20;
  Result<std::vector<KeyValue>> scan = db->Scan(all);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->size(), model.size());
  auto it = model.begin();
  for (const KeyValue& kv : *scan) {
    ASSERT_EQ(kv.key, it->first);
    ASSERT_EQ(kv.value, it->second);
    ++it;
  }
  ScanOptions range;
  range.from = "k10.";
  range.to = "k11";
  range.max_keys = 5;
  scan = db->Scan(range);
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->size(), 5u);
  EXPECT_EQ((*scan)[0].key, "k10.0");
  uint64_t tailed = 0;
  for (uint32_t shard = 0; shard < db->shard_count(); ++shard) {
    TailOptions t;
    t.shard = shard;
    t.max_records = 1u << 20;
    Result<std::vector<LogRecord>> records = db->Tail(t);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    for (size_t i = 1; i < records->size(); ++i) {
      ASSERT_LT((*records)[i - 1].sequence, (*records)[i].sequence);
    }
    tailed += records->size();
  }
  EXPECT_EQ(tailed, static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(EngineTest, SecondOpenerGetsLockError) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  Result<std::unique_ptr<Engine>> second = Engine::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsBusy());
  EXPECT_NE(second.status().message().find("is locked by pid " + std::to_string(getpid())),
            std::string_view::npos)
      << second.status().ToString();
}

TEST(EngineTest, OversizedKeyIsRejectedWithNothingWritten) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  const EngineStats before = db->Stats();
  Status s = db->Put({}, std::string(5000, 'k'), "v");
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("kKeyBytesMax"), std::string_view::npos);
  const EngineStats after = db->Stats();
  for (size_t i = 0; i < after.shards.size(); ++i) {
    EXPECT_EQ(after.shards[i].log_bytes, before.shards[i].log_bytes);
    EXPECT_EQ(after.shards[i].last_sequence, before.shards[i].last_sequence);
  }
}

TEST(EngineTest, BatchAcrossShardsIsRejectedUnlessHashTagged) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  WriteBatch spread;
  // Find two keys on different shards.
  std::string other;
  for (int i = 0; db->ShardOf("x") == db->ShardOf(other = "y" + std::to_string(i)); ++i) {
  }
  ASSERT_OK(spread.Put("x", "1"));
  ASSERT_OK(spread.Put(other, "2"));
  EXPECT_TRUE(db->Write({}, spread).IsInvalidArgument());
  WriteBatch tagged;
  ASSERT_OK(tagged.Put("user:{7}:name", "ann"));
  ASSERT_OK(tagged.Put("user:{7}:email", "ann@x"));
  ASSERT_OK(tagged.Delete("user:{7}:old"));
  ASSERT_OK(db->Write({}, tagged));
  EXPECT_EQ(*db->Get("user:{7}:name"), "ann");
  ASSERT_OK(db->Close());
  auto again = OpenOrDie(o);
  EXPECT_EQ(*again->Get("user:{7}:email"), "ann@x");
}

// Runs on one of the engine's executors, as an embedding application's code
// would: coroutine forms for keys on this shard and on the other one.
Task<void> CoroutineClient(Engine* db, std::promise<std::string>* done) {
  std::string log;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "co" + std::to_string(i);
    Status s = co_await db->CoPut({}, key, "v" + std::to_string(i));
    if (!s.ok()) log += "put " + key + ": " + s.ToString() + "; ";
  }
  WriteBatch batch;
  if (!batch.Put("{t}:a", "1").ok() || !batch.Put("{t}:b", "2").ok()) log += "batch; ";
  Status s = co_await db->CoWrite({}, batch);
  if (!s.ok()) log += "write: " + s.ToString() + "; ";
  s = co_await db->CoDelete({}, "co3");
  if (!s.ok()) log += "delete: " + s.ToString() + "; ";
  for (int i = 0; i < 20; ++i) {
    const std::string key = "co" + std::to_string(i);
    Result<std::string> v = co_await db->CoGet(key);
    if (i == 3) {
      if (!v.status().IsNotFound()) log += "co3 should be deleted; ";
    } else if (!v.ok() || *v != "v" + std::to_string(i)) {
      log += "get " + key + " wrong; ";
    }
  }
  Result<std::string> b = co_await db->CoGet("{t}:b");
  if (!b.ok() || *b != "2") log += "batch entry wrong; ";
  done->set_value(log);
}

TEST(EngineTest, CoroutineFormsOnTheEnginesExecutors) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  std::promise<std::string> done;
  ASSERT_OK(db->Spawn(0, CoroutineClient(db.get(), &done)));
  EXPECT_EQ(done.get_future().get(), "");
  EXPECT_EQ(*db->Get("co7"), "v7");  // And visible to blocking callers.
  EXPECT_TRUE(db->Spawn(9, CoroutineClient(db.get(), &done)).IsInvalidArgument());
}

TEST(EngineTest, AsyncFormsCallBack) {
  testing::TestDir dir;
  Options o = SmallOptions(dir.File("db"));
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  constexpr int kOps = 200;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kOps; ++i) {
    keys.push_back("a" + std::to_string(i));
    values.push_back(std::string(50, static_cast<char>('a' + i % 26)));
  }
  std::atomic<int> completed{0}, failed{0};
  for (int i = 0; i < kOps; ++i) {
    db->PutAsync({}, keys[i], values[i], [&](Status s) {
      if (!s.ok()) failed.fetch_add(1);
      completed.fetch_add(1);
      completed.notify_all();
    });
  }
  for (int seen = completed.load(); seen < kOps; seen = completed.load()) completed.wait(seen);
  EXPECT_EQ(failed.load(), 0);
  std::promise<Result<std::string>> got;
  db->GetAsync(keys[42], [&](Result<std::string> v) { got.set_value(std::move(v)); });
  Result<std::string> v = got.get_future().get();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, values[42]);
}

// More asynchronous and sync=false calls in flight than the request pools
// hold (engine/request_path.h): the rest come from the heap, and every one
// completes once, with its own key and value.
TEST(EngineTest, MoreCallsInFlightThanThePoolsHold) {
  testing::TestDir dir;
  auto db = OpenOrDie(SmallOptions(dir.File("db")));
  ASSERT_NE(db, nullptr);
  constexpr int kOps = 2 * static_cast<int>(engine::kPooledRequestsMax) + 17;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kOps; ++i) {
    keys.push_back("p" + std::to_string(i));
    values.push_back("v" + std::to_string(i * 7));
  }
  std::atomic<int> completed{0}, failed{0};
  const auto count = [&](bool ok) {
    if (!ok) failed.fetch_add(1);
    completed.fetch_add(1);
    completed.notify_all();
  };
  const WriteOptions no_sync{false};
  for (int i = 0; i < kOps; ++i) {
    if (i % 2 == 0) {
      db->PutAsync({}, keys[i], values[i], [&](Status s) { count(s.ok()); });
    } else {
      ASSERT_OK(db->Put(no_sync, keys[i], values[i]));  // Copied, queued, returns.
    }
  }
  const int async_puts = (kOps + 1) / 2;
  for (int seen = completed.load(); seen < async_puts; seen = completed.load()) {
    completed.wait(seen);
  }
  std::vector<std::string> got(kOps);
  for (int i = 0; i < kOps; ++i) {
    db->GetAsync(keys[i], [&, i](Result<std::string> v) {
      got[i] = v.ok() ? *v : v.status().ToString();
      count(v.ok());
    });
  }
  for (int seen = completed.load(); seen < async_puts + kOps; seen = completed.load()) {
    completed.wait(seen);
  }
  EXPECT_EQ(completed.load(), async_puts + kOps) << "each callback runs once";
  EXPECT_EQ(failed.load(), 0);
  for (int i = 0; i < kOps; ++i) ASSERT_EQ(got[i], values[i]) << keys[i];
}

}  // namespace
}  // namespace dmalog

// Close while other threads are still calling the engine: every call made
// during the close either completes as usual or fails with Aborted ("the
// database is closed"); none crashes or hangs, and every write acknowledged
// with OK, by a blocking call or a callback, is in the database when it is
// opened again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/task.h"
#include "dmalog/write_batch.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SmallDbOptions;

constexpr int kThreads = 8;
constexpr int kOpsPerThreadMax = 200000;  // Far more than run before Close.
constexpr int kAsyncInFlightMax = 64;

std::string Key(int thread, int i) {
  return "t" + std::to_string(thread) + "-" + std::to_string(i);
}
// Large enough that the log rolls to new segments during the run.
std::string Value(int thread, int i) {
  return std::string(600 + (i % 7) * 100, static_cast<char>('a' + (thread + i) % 26));
}

// What one thread saw: the keys written with OK, and anything unexpected.
struct Seen {
  std::mutex mu;  // Callbacks run on executor threads.
  std::vector<int> acknowledged;
  std::vector<std::string> unexpected;

  void Ack(int i) {
    std::lock_guard<std::mutex> lock(mu);
    acknowledged.push_back(i);
  }
  // OK and Aborted are the two answers a call may get around a close.
  void Check(const Status& s, const char* what) {
    if (s.ok() || s.IsAborted()) return;
    std::lock_guard<std::mutex> lock(mu);
    unexpected.push_back(std::string(what) + ": " + s.ToString());
  }
};

// Each thread mixes every kind of call until the engine answers Aborted.
void CallUntilAborted(Engine& db, int t, Seen& seen, std::atomic<int>& in_flight) {
  for (int i = 0; i < kOpsPerThreadMax; ++i) {
    Status s;
    switch ((i + t) % 7) {
      case 0:
      case 1:
        s = db.Put(WriteOptions{.sync = i % 4 != 1}, Key(t, i), Value(t, i));
        if (s.ok()) seen.Ack(i);
        break;
      case 2: {
        WriteBatch b;
        s = b.Put(Key(t, i), Value(t, i));
        if (s.ok()) s = db.Write({}, b);
        if (s.ok()) seen.Ack(i);
        break;
      }
      case 3:
        if (in_flight.load() >= kAsyncInFlightMax) continue;
        in_flight.fetch_add(1);
        db.PutAsync({}, Key(t, i), Value(t, i), [&seen, &in_flight, i](Status st) {
          seen.Check(st, "PutAsync");
          if (st.ok()) seen.Ack(i);
          in_flight.fetch_sub(1);
        });
        break;
      case 4: {
        Result<std::string> v = db.Get(Key(t, i - 2));
        s = v.ok() || v.status().IsNotFound() ? Status::OK() : v.status();
        break;
      }
      case 5: {
        Result<std::vector<KeyValue>> kvs =
            db.Scan(ScanOptions{.from = Key(t, 0), .to = "", .max_keys = 10});
        s = kvs.ok() ? Status::OK() : kvs.status();
        (void)db.Stats();
        break;
      }
      default:  // The calls that span shards, asynchronously: Close waits for them.
        if (in_flight.load() >= kAsyncInFlightMax) continue;
        in_flight.fetch_add(3);
        db.ScanAsync(ScanOptions{.from = Key(t, 0), .to = "", .max_keys = 10},
                     [&seen, &in_flight](Result<std::vector<KeyValue>> kvs) {
                       seen.Check(kvs.status(), "ScanAsync");
                       in_flight.fetch_sub(1);
                     });
        db.SyncAsync([&seen, &in_flight](Status st) {
          seen.Check(st, "SyncAsync");
          in_flight.fetch_sub(1);
        });
        db.StatsAsync([&in_flight](EngineStats /*stats*/) { in_flight.fetch_sub(1); });
        break;
    }
    seen.Check(s, "call");
    if (s.IsAborted()) return;
  }
}

// The coroutine form, on an executor: writes (to any shard) until Aborted.
// A free function, not a capturing lambda: its arguments live in its frame.
Task<void> CoWriteUntilAborted(Engine* db, int t, Seen* seen, std::atomic<int>* running) {
  for (int i = 0; i < kOpsPerThreadMax; ++i) {
    const std::string key = Key(t, i);
    const std::string value = Value(t, i);
    const Status s = co_await db->CoPut({}, key, value);
    seen->Check(s, "CoPut");
    if (!s.ok()) break;
    seen->Ack(i);
  }
  running->fetch_sub(1);
}

// Threads, and a coroutine on each shard, call the engine until it answers
// Aborted; Close comes `close_after` after they start.
void CloseDuringCalls(const Options& o, std::chrono::milliseconds close_after,
                      std::vector<Seen>& seen) {
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  std::atomic<int> in_flight{0};
  std::atomic<int> coroutines{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(CallUntilAborted, std::ref(*db), t, std::ref(seen[t]),
                         std::ref(in_flight));
  }
  for (uint32_t shard = 0; shard < db->shard_count(); ++shard) {
    const int t = kThreads + static_cast<int>(shard);
    coroutines.fetch_add(1);
    EXPECT_OK(db->Spawn(shard, CoWriteUntilAborted(db.get(), t, &seen[t], &coroutines)));
  }
  std::this_thread::sleep_for(close_after);
  EXPECT_OK(db->Close());
  EXPECT_EQ(coroutines.load(), 0) << "each coroutine's last call ended before Close returned";
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(in_flight.load(), 0) << "every async callback ran by the end of Close";
  EXPECT_TRUE(db->Put({}, "late", "x").IsAborted());
  EXPECT_TRUE(db->Get("late").status().IsAborted());
  EXPECT_TRUE(db->Stats().shards.empty());
}

TEST(CloseRaceTest, CallsDuringCloseCompleteOrAbortAndAcknowledgedWritesSurvive) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 2);
  // Every round writes the same keys with the same values, so a key
  // acknowledged in any round must be there at the end.
  std::vector<Seen> seen(kThreads + o.shard_count);
  for (int close_after_ms : {5, 40, 300}) {
    SCOPED_TRACE("close after " + std::to_string(close_after_ms) + " ms");
    ASSERT_NO_FATAL_FAILURE(CloseDuringCalls(o, std::chrono::milliseconds(close_after_ms), seen));
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  size_t acknowledged = 0;
  for (size_t s = 0; s < seen.size(); ++s) {
    const int t = static_cast<int>(s);
    for (const std::string& u : seen[s].unexpected) ADD_FAILURE() << "thread " << t << ": " << u;
    for (int i : seen[s].acknowledged) {
      Result<std::string> v = db->Get(Key(t, i));
      ASSERT_TRUE(v.ok()) << Key(t, i) << ": " << v.status().ToString();
      ASSERT_EQ(*v, Value(t, i)) << Key(t, i);
    }
    acknowledged += seen[s].acknowledged.size();
  }
  EXPECT_GT(acknowledged, 100u) << "the threads wrote before the closes";
}

// Issues `count` PutAsync calls to its own shard without awaiting any, then
// reports; the calls wait in the executor's self-message FIFO.
Task<void> PostManyToOwnShard(Engine* db, int count, std::atomic<int>* ok, std::atomic<int>* failed,
                              std::promise<void>* issued) {
  for (int i = 0; i < count; ++i) {
    db->PutAsync({.sync = false}, "{self}" + std::to_string(i), Value(0, i),
                 [ok, failed](Status s) { (s.ok() ? ok : failed)->fetch_add(1); });
  }
  issued->set_value();
  co_return;
}

// Calls an executor's own task made before Close are admitted, so they
// complete and last, even when thousands still wait in the executor's
// self-message FIFO when Close posts its Stop (which the executor runs in
// the same loop turn as the first batch of them).
TEST(CloseRaceTest, CallsATaskPostedToItsOwnShardBeforeCloseComplete) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  constexpr int kPuts = 5000;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    std::promise<void> issued;
    ASSERT_OK(db->Spawn(0, PostManyToOwnShard(db.get(), kPuts, &ok, &failed, &issued)));
    issued.get_future().wait();
    ASSERT_OK(db->Close());
  }
  EXPECT_EQ(failed.load(), 0) << "calls admitted before Close failed";
  ASSERT_EQ(ok.load(), kPuts);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  int missing = 0;
  for (int i = 0; i < kPuts; ++i) missing += db->Get("{self}" + std::to_string(i)).ok() ? 0 : 1;
  EXPECT_EQ(missing, 0);
}

// sync=false puts larger than the batch buffer stall (waiting for room or
// a new segment) after they are acknowledged; Close must still log them.
TEST(CloseRaceTest, UnsyncedPutsStalledAtCloseSurvive) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  constexpr int kPuts = 200;
  const std::string value(256 << 10, 'v');
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < kPuts; ++i) ASSERT_OK(db->Put({.sync = false}, Key(0, i), value));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  int missing = 0;
  for (int i = 0; i < kPuts; ++i) missing += db->Get(Key(0, i)).ok() ? 0 : 1;
  EXPECT_EQ(missing, 0) << "acknowledged sync=false puts lost by a clean Close";
}

// Gets queued before Close whose reads go to disk: each callback runs, with
// the value or Aborted, before Close returns, and none touches a destroyed
// shard (ASan).
TEST(CloseRaceTest, AsyncGetsInFlightAtCloseComplete) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  constexpr int kGets = 2000;
  ASSERT_NO_FATAL_FAILURE({
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < kGets; ++i) ASSERT_OK(db->Put({.sync = false}, Key(0, i), Value(0, i)));
    ASSERT_OK(db->Close());
  });
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  std::atomic<int> done{0};
  std::atomic<int> bad{0};
  for (int i = 0; i < kGets; ++i) {
    db->GetAsync(Key(0, i), [&done, &bad, i](Result<std::string> r) {
      if (r.ok() ? *r != Value(0, i) : !r.status().IsAborted()) bad.fetch_add(1);
      done.fetch_add(1);
    });
  }
  ASSERT_OK(db->Close());
  EXPECT_EQ(done.load(), kGets) << "callbacks not run by the end of Close";
  EXPECT_EQ(bad.load(), 0);
}

// Two threads close at once: the second returns only when the first is
// done, so the directory can be opened again as soon as either returns.
TEST(CloseRaceTest, ConcurrentClosesBothWaitForTheClose) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 2);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_OK(db->Put({.sync = false}, Key(0, i), Value(0, i)));
  std::thread other([&db] { EXPECT_OK(db->Close()); });
  EXPECT_OK(db->Close());
  auto reopened = OpenOrFail(o);
  ASSERT_NE(reopened, nullptr) << "the lock was still held after a Close returned";
  other.join();
  EXPECT_EQ(reopened->Get(Key(0, 99)).value(), Value(0, 99));
  std::promise<Status> empty_batch;
  db->WriteAsync({}, WriteBatch(), [&empty_batch](Status s) { empty_batch.set_value(s); });
  EXPECT_TRUE(empty_batch.get_future().get().IsAborted());
}

// Close from a callback would wait for its own thread: it is refused, and
// the engine stays open.
TEST(CloseRaceTest, CloseFromACallbackIsRefused) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  std::promise<Status> closed;
  Engine* engine = db.get();
  db->PutAsync({}, "k", "v", [engine, &closed](Status s) {
    EXPECT_OK(s);
    closed.set_value(engine->Close());
  });
  const Status s = closed.get_future().get();
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("thread of your own"), std::string::npos) << s.ToString();
  EXPECT_EQ(db->Get("k").value(), "v");
  EXPECT_OK(db->Close());
}

}  // namespace
}  // namespace dmalog

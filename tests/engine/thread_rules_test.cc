// Where each form of the API may run (include/dmalog/engine.h): a blocking
// call on an executor thread could wait for itself (its own engine's) or
// for an engine whose callbacks block on this one (another's), so it gets
// InvalidArgument instead of a hang; a coroutine form anywhere but on the
// engine's own threads would reach a shard from the wrong thread, so it gets
// InvalidArgument too; an asynchronous form works anywhere.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "scheduler/message.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SmallDbOptions;

// Every blocking call but Close and Stats (covered elsewhere), on `db`.
std::vector<Status> BlockingCalls(Engine* db) {
  std::vector<Status> out;
  out.push_back(db->Put({}, "k", "v"));
  out.push_back(db->Delete({}, "k"));
  WriteBatch batch;
  out.push_back(batch.Put("k", "v"));
  out.push_back(db->Write({}, batch));
  out.push_back(db->Get("k").status());
  out.push_back(db->Scan({}).status());
  out.push_back(db->Tail({}).status());
  out.push_back(db->Sync());
  return out;
}

void ExpectRefusedOnExecutorThread(const std::vector<Status>& results) {
  // The batch's own Put (index 2) is not an engine call.
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 2) continue;
    EXPECT_TRUE(results[i].IsInvalidArgument()) << i << ": " << results[i].ToString();
    EXPECT_NE(results[i].ToString().find("executor thread"), std::string::npos)
        << results[i].ToString();
  }
}

TEST(ThreadRulesTest, BlockingCallsInACallbackAreRefused) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  std::promise<std::vector<Status>> results;
  Engine* engine = db.get();
  db->PutAsync({}, "first", "v", [engine, &results](Status s) {
    EXPECT_OK(s);
    results.set_value(BlockingCalls(engine));
  });
  ExpectRefusedOnExecutorThread(results.get_future().get());
  EXPECT_EQ(db->Get("first").value(), "v") << "the engine still works";
  EXPECT_OK(db->Close());
}

Task<void> BlockingCallsInATask(Engine* db, std::promise<std::vector<Status>>* results) {
  results->set_value(BlockingCalls(db));
  co_return;
}

TEST(ThreadRulesTest, BlockingCallsInASpawnedTaskAreRefused) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  ASSERT_NE(db, nullptr);
  for (uint32_t shard = 0; shard < db->shard_count(); ++shard) {
    std::promise<std::vector<Status>> results;
    ASSERT_OK(db->Spawn(shard, BlockingCallsInATask(db.get(), &results)));
    ExpectRefusedOnExecutorThread(results.get_future().get());
  }
  EXPECT_OK(db->Close());
}

// Two engines in one test folder.
struct TwoEngines {
  bool ok() const { return db != nullptr && other != nullptr; }
  testing::TestDir dir;
  std::unique_ptr<Engine> db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  std::unique_ptr<Engine> other = OpenOrFail(SmallDbOptions(dir.File("other"), 2));
};

// Another engine's threads refuse the blocking forms too (two engines
// whose callbacks block on each other would hang); the asynchronous forms
// work there.
TEST(ThreadRulesTest, AnotherEnginesThreadsUseTheAsynchronousForms) {
  TwoEngines engines;
  ASSERT_TRUE(engines.ok());
  std::promise<std::vector<Status>> blocking;
  std::promise<Status> async;
  Engine* engine = engines.db.get();
  engines.other->PutAsync({}, "x", "y", [engine, &blocking, &async](Status s) {
    EXPECT_OK(s);
    blocking.set_value(BlockingCalls(engine));
    engine->PutAsync({}, "k", "from another engine's thread",
                     [&async](Status put) { async.set_value(put); });
  });
  ExpectRefusedOnExecutorThread(blocking.get_future().get());
  EXPECT_OK(async.get_future().get());
  EXPECT_EQ(engines.db->Get("k").value(), "from another engine's thread");
  EXPECT_OK(engines.other->Close());
  EXPECT_OK(engines.db->Close());
}

// Awaits `db`'s coroutine forms from a task of another engine.
Task<void> CoroutineFormsOfAnotherEngine(Engine* db, std::promise<std::vector<Status>>* results) {
  std::vector<Status> out;
  out.push_back(co_await db->CoPut({}, "k", "v"));
  out.push_back(co_await db->CoDelete({}, "k"));
  WriteBatch batch;
  if (batch.Put("k", "v").ok()) out.push_back(co_await db->CoWrite({}, batch));
  out.push_back((co_await db->CoGet("k")).status());
  // Named, not `{}`: GCC 12 destroys a braced temporary argument of a
  // co_await twice (it freed a ScanOptions' strings twice here).
  const ScanOptions scan;
  const TailOptions tail;
  out.push_back((co_await db->CoScan(scan)).status());
  out.push_back((co_await db->CoTail(tail)).status());
  out.push_back(co_await db->CoSync());
  out.push_back((co_await db->CoStats()).status());
  results->set_value(std::move(out));
}

TEST(ThreadRulesTest, CoroutineFormsOnAnotherEnginesThreadsAreRefused) {
  TwoEngines engines;
  ASSERT_TRUE(engines.ok());
  std::promise<std::vector<Status>> results;
  ASSERT_OK(engines.other->Spawn(0, CoroutineFormsOfAnotherEngine(engines.db.get(), &results)));
  const std::vector<Status> got = results.get_future().get();
  ASSERT_EQ(got.size(), 8u);
  for (const Status& s : got) {
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.ToString().find("Spawn"), std::string::npos) << s.ToString();
  }
  EXPECT_TRUE(engines.db->Get("k").status().IsNotFound()) << "nothing was written";
  EXPECT_OK(engines.other->Close());
  EXPECT_OK(engines.db->Close());
}

// A callback's next request never waits for room in a full inbox: the
// executor running the callback is the one that would have to drain it.
TEST(ThreadRulesTest, ACallbackPostsIntoAFullInboxWithoutWaiting) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 1));
  ASSERT_NE(db, nullptr);
  Engine* engine = db.get();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<Status> posted;
  std::promise<void> holding;
  db->PutAsync({}, "held", "v", [engine, released, &holding, &posted](Status s) {
    EXPECT_OK(s);
    holding.set_value();
    released.wait();  // The executor is held here while the inbox fills.
    engine->PutAsync({}, "next", "v", [&posted](Status s2) { posted.set_value(s2); });
  });
  holding.get_future().wait();
  // Posted from a thread of our own, which waits once the inbox is full.
  constexpr int kGets = static_cast<int>(sched::MessageInbox::kCapacity) + 16;
  std::atomic<int> gets_posted{0};
  std::atomic<int> gets_done{0};
  std::thread poster([&] {
    for (int i = 0; i < kGets; ++i) {
      engine->GetAsync("held", [&gets_done](Result<std::string>) { gets_done.fetch_add(1); });
      gets_posted.fetch_add(1, std::memory_order_release);
    }
  });
  // Nearly full (other messages may share the inbox), then full.
  constexpr int kNearlyFull = static_cast<int>(sched::MessageInbox::kCapacity) - 8;
  constexpr int kFullWaitsMax = 30000;  // 1 ms each.
  for (int waits = 0;
       gets_posted.load(std::memory_order_acquire) < kNearlyFull && waits < kFullWaitsMax;
       ++waits) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LT(gets_posted.load(), kGets) << "the inbox never filled";
  release.set_value();
  std::future<Status> next = posted.get_future();
  ASSERT_EQ(next.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the callback's PutAsync waited for an inbox only its own executor drains";
  EXPECT_OK(next.get());
  poster.join();
  EXPECT_OK(db->Close());
  EXPECT_EQ(gets_done.load(), kGets);
}

// Opening a second engine in a callback would hold the executor for the
// whole recovery, and that engine could only be closed there: refused.
TEST(ThreadRulesTest, OpenInACallbackIsRefused) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 1));
  ASSERT_NE(db, nullptr);
  std::promise<Status> opened;
  const Options other = SmallDbOptions(dir.File("other"), 1);
  db->PutAsync({}, "k", "v", [&other, &opened](Status s) {
    EXPECT_OK(s);
    opened.set_value(Engine::Open(other).status());
  });
  const Status s = opened.get_future().get();
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("Open was called on an executor thread"), std::string::npos)
      << s.ToString();
  EXPECT_OK(db->Close());
}

TEST(ThreadRulesDeathTest, StatsInACallbackAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  EXPECT_DEATH(
      {
        auto db = OpenOrFail(o);
        std::promise<void> never;
        Engine* engine = db.get();
        db->PutAsync({}, "k", "v", [engine](Status) { engine->Stats(); });
        never.get_future().wait();
      },
      "Stats was called on an executor thread");
}

}  // namespace
}  // namespace dmalog

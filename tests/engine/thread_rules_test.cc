// Where each form of the API may run (include/dmalog/engine.h): a blocking
// call on one of the engine's own threads would wait for itself, so it gets
// InvalidArgument instead of a hang; a coroutine form anywhere but on the
// engine's own threads would reach a shard from the wrong thread, so it gets
// InvalidArgument too. Another engine's threads are "a thread of your own".
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "dmalog/engine.h"
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

void ExpectRefusedOnOwnThread(const std::vector<Status>& results) {
  // The batch's own Put (index 2) is not an engine call.
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 2) continue;
    EXPECT_TRUE(results[i].IsInvalidArgument()) << i << ": " << results[i].ToString();
    EXPECT_NE(results[i].ToString().find("own threads"), std::string::npos)
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
  ExpectRefusedOnOwnThread(results.get_future().get());
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
    ExpectRefusedOnOwnThread(results.get_future().get());
  }
  EXPECT_OK(db->Close());
}

// Engine `other`'s threads are not `db`'s: the blocking forms work there.
TEST(ThreadRulesTest, AnotherEnginesThreadsMayBlockOnThisEngine) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  auto other = OpenOrFail(SmallDbOptions(dir.File("other"), 2));
  ASSERT_NE(db, nullptr);
  ASSERT_NE(other, nullptr);
  std::promise<std::string> got;
  Engine* engine = db.get();
  other->PutAsync({}, "x", "y", [engine, &got](Status s) {
    EXPECT_OK(s);
    Status put = engine->Put({}, "k", "from another engine's thread");
    if (!put.ok()) return got.set_value(put.ToString());
    Result<std::string> v = engine->Get("k");
    got.set_value(v.ok() ? *v : v.status().ToString());
  });
  EXPECT_EQ(got.get_future().get(), "from another engine's thread");
  EXPECT_OK(other->Close());
  EXPECT_OK(db->Close());
}

// Awaits `db`'s coroutine forms from a task of another engine.
Task<void> CoroutineFormsOfAnotherEngine(Engine* db, std::promise<std::vector<Status>>* results) {
  std::vector<Status> out;
  out.push_back(co_await db->CoPut({}, "k", "v"));
  out.push_back(co_await db->CoDelete({}, "k"));
  WriteBatch batch;
  if (batch.Put("k", "v").ok()) out.push_back(co_await db->CoWrite({}, batch));
  out.push_back((co_await db->CoGet("k")).status());
  results->set_value(std::move(out));
}

TEST(ThreadRulesTest, CoroutineFormsOnAnotherEnginesThreadsAreRefused) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 2));
  auto other = OpenOrFail(SmallDbOptions(dir.File("other"), 2));
  ASSERT_NE(db, nullptr);
  ASSERT_NE(other, nullptr);
  std::promise<std::vector<Status>> results;
  ASSERT_OK(other->Spawn(0, CoroutineFormsOfAnotherEngine(db.get(), &results)));
  const std::vector<Status> got = results.get_future().get();
  ASSERT_EQ(got.size(), 4u);
  for (const Status& s : got) {
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.ToString().find("Spawn"), std::string::npos) << s.ToString();
  }
  EXPECT_TRUE(db->Get("k").status().IsNotFound()) << "nothing was written";
  EXPECT_OK(other->Close());
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
      "Stats was called on one of the engine's own threads");
}

}  // namespace
}  // namespace dmalog

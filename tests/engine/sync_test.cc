// Engine::Sync: every write acknowledged before it, sync=false ones
// included, survives a power loss right after it returns; and it reports a
// write error that a sync=false write met after its call had returned.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "engine/engine_hooks.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::FaultHarness;
using testing::OpenOrFail;
using testing::SmallDbOptions;

// Many flushes' worth: when the last put returns, most are still queued.
constexpr int kKeys = 3000;

std::string Key(int i) { return "key" + std::to_string(i); }
std::string Value(int i) { return std::string(1000, static_cast<char>('a' + i % 26)); }

TEST(SyncTest, UnsyncedWritesSurviveAPowerLossAfterSync) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 2);
  {
    FaultHarness harness(5);
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (int i = 0; i < kKeys; ++i) ASSERT_OK((*db)->Put({.sync = false}, Key(i), Value(i)));
    ASSERT_OK((*db)->Sync());
    // Power fails on every shard at once: unsynced writes are torn or lost.
    for (uint32_t shard = 0; shard < o.shard_count; ++shard) {
      Result<io::CrashReport> report = harness.Crash(**db, shard, io::CrashOptions{});
      ASSERT_TRUE(report.ok()) << report.status().ToString();
    }
    (*db)->Close().IgnoreError();  // Every I/O fails after the crash.
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < kKeys; ++i) {
    Result<std::string> v = db->Get(Key(i));
    ASSERT_TRUE(v.ok()) << Key(i) << ": " << v.status().ToString();
    ASSERT_EQ(*v, Value(i)) << Key(i);
  }
}

// Values larger than the batch buffer: the puts stall for room and new
// segments after they are acknowledged, and Sync must wait for them too.
TEST(SyncTest, StalledUnsyncedWritesSurviveAPowerLossAfterSync) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  constexpr int kLargeKeys = 200;
  const std::string large(256 << 10, 'L');
  {
    FaultHarness harness(8);
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (int i = 0; i < kLargeKeys; ++i) ASSERT_OK((*db)->Put({.sync = false}, Key(i), large));
    // A scan sees this thread's own writes, stalled or not.
    Result<std::vector<KeyValue>> kvs = (*db)->Scan({.from = "", .to = "", .max_keys = 1000});
    ASSERT_TRUE(kvs.ok()) << kvs.status().ToString();
    EXPECT_EQ(kvs->size(), static_cast<size_t>(kLargeKeys));
    ASSERT_OK((*db)->Sync());
    Result<io::CrashReport> report = harness.Crash(**db, 0, io::CrashOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    (*db)->Close().IgnoreError();  // Every I/O fails after the crash.
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  int missing = 0;
  for (int i = 0; i < kLargeKeys; ++i) missing += db->Get(Key(i)).ok() ? 0 : 1;
  EXPECT_EQ(missing, 0) << "acknowledged sync=false puts lost after Sync";
}

TEST(SyncTest, ReportsTheErrorOfAnUnsyncedWrite) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  FaultHarness harness(6);
  Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_OK((*db)->Put({}, "before", "v"));
  ASSERT_OK((*db)->Sync());
  // The background preparation of the spare segment must not take the fault.
  testing::WaitForSpareSegments(**db);
  ASSERT_OK(harness.InjectAt(**db, 0, 1, io::FaultSpec::Eio(io::OpFilter::kWrite)));
  ASSERT_OK((*db)->Put({.sync = false}, "lost", "v"));  // Acknowledged once queued.
  const Status s = (*db)->Sync();
  EXPECT_TRUE(s.IsIOError() || s.IsReadOnly()) << s.ToString();
  EXPECT_NE(s.ToString().find("EIO"), std::string::npos) << s.ToString();
  EXPECT_EQ((*db)->Get("before").value(), "v") << "reads still work";
  (*db)->Close().IgnoreError();
}

TEST(SyncTest, AfterCloseItIsAborted) {
  testing::TestDir dir;
  auto db = OpenOrFail(SmallDbOptions(dir.File("db"), 1));
  ASSERT_NE(db, nullptr);
  ASSERT_OK(db->Sync());  // Nothing to sync.
  ASSERT_OK(db->Close());
  EXPECT_TRUE(db->Sync().IsAborted());
}

}  // namespace
}  // namespace dmalog

// When the flusher lingers, and for how long (engine/flush_pacer.h).
#include "engine/flush_pacer.h"

#include <gtest/gtest.h>

#include "dmalog/engine.h"
#include "tests/test_util.h"

namespace dmalog::engine {
namespace {

constexpr uint64_t kNowNs = 1'000'000'000;

TEST(FlushPacerTest, LingersForTheLastFlushsRecordsBoundedByItsLatencyAndTheOption) {
  FlushPacer pacer(/*linger_us_max=*/100);
  EXPECT_EQ(pacer.LingerUntilNs(1, kNowNs), 0u) << "no flush yet: nothing to wait for";
  pacer.Flushed(/*records=*/8, /*latency_ns=*/150'000);
  EXPECT_TRUE(pacer.Wants(3));
  EXPECT_EQ(pacer.LingerUntilNs(3, kNowNs), kNowNs + 100'000) << "bounded by the option";
  EXPECT_EQ(pacer.LingerUntilNs(8, kNowNs), 0u) << "as many as last time: flush now";
  EXPECT_EQ(pacer.LingerUntilNs(9, kNowNs), 0u);
  pacer.Flushed(8, 40'000);
  EXPECT_EQ(pacer.LingerUntilNs(3, kNowNs), kNowNs + 40'000) << "bounded by the last flush";
}

TEST(FlushPacerTest, ALoneWriterAndAZeroOptionNeverWait) {
  FlushPacer pacer(100);
  pacer.Flushed(1, 150'000);
  EXPECT_FALSE(pacer.Wants(1));
  EXPECT_EQ(pacer.LingerUntilNs(1, kNowNs), 0u);
  FlushPacer off(0);
  off.Flushed(16, 150'000);
  EXPECT_TRUE(off.Wants(3));
  EXPECT_EQ(off.LingerUntilNs(3, kNowNs), 0u);
}

TEST(FlushPacerTest, OptionOverTheLimitIsRefused) {
  testing::TestDir dir;
  Options o;
  o.db_path = dir.File("db");
  o.group_commit_linger_us = FlushPacer::kLingerUsMax + 1;
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  ASSERT_TRUE(db.status().IsInvalidArgument()) << db.status().ToString();
  EXPECT_NE(db.status().ToString().find("group_commit_linger_us"), std::string::npos);
}

}  // namespace
}  // namespace dmalog::engine

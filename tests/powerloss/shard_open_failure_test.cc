// Regression (found by the power-loss suite, seed 36): when one shard's
// recovery failed and another's succeeded, Engine::Open hung in its cleanup:
// Close() stopped the opened shard, whose flush loops had never started, and
// waited for them forever. Open must return the recovery error instead.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <string>

#include "dmalog/engine.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

constexpr auto kOpenTimeout = std::chrono::seconds(30);

TEST(ShardOpenFailure, OneCorruptShardFailsOpenWithoutHanging) {
  TestDir dir;
  Options o;
  o.db_path = dir.File("db");
  o.shard_count = 2;
  o.segment_size_bytes = 4u << 20;
  {
    auto db = Engine::Open(o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (int i = 0; i < 200; ++i) {
      ASSERT_OK((*db)->Put({}, "key" + std::to_string(i), std::string(100, 'v')));
    }
    ASSERT_OK((*db)->Close());
  }
  // Damage shard 1's first record (after the 4 KiB header block); valid
  // records follow, so this is corruption in the middle of its log.
  const std::string segment = o.db_path + "/shard-001/00000001.seg";
  std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << segment;
  f.seekg(4096 + 40);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(4096 + 40);
  f.write(&c, 1);
  f.close();

  std::future<Status> opened = std::async(std::launch::async, [o] {
    auto db = Engine::Open(o);
    return db.ok() ? Status::OK() : db.status();
  });
  if (opened.wait_for(kOpenTimeout) != std::future_status::ready) {
    std::fprintf(stderr, "Engine::Open hung after one shard failed recovery\n");
    std::abort();  // The open thread cannot be joined.
  }
  const Status s = opened.get();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("shard-001"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("offset"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dmalog::testing

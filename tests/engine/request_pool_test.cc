// RequestPool: requests come from the pool until it is empty, then from the
// heap; Release tells them apart; racing threads never share a request.
#include "engine/request_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace dmalog::engine {
namespace {

struct Request {
  std::string bytes;
  std::atomic<int> users{0};
};

TEST(RequestPoolTest, PoolFirstThenHeapAndReleaseTellsThemApart) {
  RequestPool<Request, 4> pool;
  std::vector<Request*> taken;
  for (int i = 0; i < 4; ++i) taken.push_back(pool.Take());
  for (Request* r : taken) EXPECT_TRUE(pool.Owns(r));
  EXPECT_EQ(std::set<Request*>(taken.begin(), taken.end()).size(), 4u) << "distinct requests";
  Request* extra = pool.Take();
  EXPECT_FALSE(pool.Owns(extra)) << "an empty pool hands out a heap request";
  pool.Release(extra);  // Deleted (ASan checks it is not pushed).
  pool.Release(taken[2]);
  EXPECT_EQ(pool.Take(), taken[2]) << "a released request is taken again";
  for (Request* r : taken) pool.Release(r);
}

TEST(RequestPoolTest, ARequestIsNeverHeldByTwoThreads) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200000;
  RequestPool<Request, 8> pool;  // Smaller than the threads' demand at times.
  std::atomic<int> shared{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, &shared] {
      for (int i = 0; i < kRounds; ++i) {
        Request* r = pool.Take();
        if (r->users.fetch_add(1) != 0) shared.fetch_add(1);
        r->bytes.assign("payload");  // Reuses the capacity of earlier uses.
        r->users.fetch_sub(1);
        pool.Release(r);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(shared.load(), 0);
}

}  // namespace
}  // namespace dmalog::engine

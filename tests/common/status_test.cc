#include "dmalog/status.h"

#include <gtest/gtest.h>

#include <string>

#include "scheduler/task.h"

namespace dmalog {
namespace {

TEST(StatusTest, OkCostsOnePointerAndHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s.sys_errno(), 0);
}

TEST(StatusTest, ErrorCarriesCodeErrnoAndMessage) {
  Status s = Status::NoSpace("write /db/x at offset 0: ENOSPC (No space left on device)", 28);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNoSpace());
  EXPECT_EQ(s.sys_errno(), 28);
  EXPECT_EQ(s.ToString(), "Disk full: write /db/x at offset 0: ENOSPC (No space left on device)");
  Status copy = s;
  EXPECT_EQ(copy.ToString(), s.ToString());
  EXPECT_EQ(s.WithContext("shard 1").message(),
            "shard 1: write /db/x at offset 0: ENOSPC (No space left on device)");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<std::string> good(std::string("v"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "v");
  Result<std::string> bad(Status::NotFound("k"));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
  Result<std::string> moved = std::move(good);
  EXPECT_EQ(moved.value(), "v");
}

Task<int> Leaf(int x) { co_return x * 2; }
Task<int> Chain(int depth) {
  int sum = 0;
  for (int i = 0; i < depth; ++i) sum += co_await Leaf(i);
  co_return sum;
}

TEST(TaskTest, IsLazyAndChainsBySymmetricTransfer) {
  Task<int> t = Chain(10000);  // Deep loops must not grow the stack.
  ASSERT_FALSE(t.done());
  t.handle().resume();
  ASSERT_TRUE(t.done());
  EXPECT_EQ(t.handle().promise().take(), 9999 * 10000);
}

}  // namespace
}  // namespace dmalog

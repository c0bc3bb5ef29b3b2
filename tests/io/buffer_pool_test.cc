// BufferPool: limits, exhaustion, registration, and FIFO waiters through a
// minimal fake Reactor.
#include "io/buffer_pool.h"

#include <coroutine>
#include <set>
#include <vector>

#include "io/reactor.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace dmalog::io {
namespace {

TEST(BufferPoolTest, RejectsBadSizes) {
  EXPECT_TRUE(BufferPool::Create(0, 4096).status().IsInvalidArgument());
  EXPECT_TRUE(BufferPool::Create(kBufferPoolCountMax + 1, 4096).status().IsInvalidArgument());
  EXPECT_TRUE(BufferPool::Create(4, 1000).status().IsInvalidArgument()) << "not aligned";
  EXPECT_TRUE(BufferPool::Create(4, 4096, 3000).status().IsInvalidArgument());
  EXPECT_TRUE(
      BufferPool::Create(kBufferPoolCountMax, kBufferSizeBytesMax).status().IsInvalidArgument());
}

TEST(BufferPoolTest, ExhaustThenRelease) {
  Result<std::unique_ptr<BufferPool>> created = BufferPool::Create(3, 8192);
  ASSERT_TRUE(created.ok());
  BufferPool& pool = **created;
  std::vector<Buffer> lent;
  std::set<uint8_t*> distinct;
  for (int i = 0; i < 3; ++i) {
    std::optional<Buffer> buffer = pool.TryAcquire();
    ASSERT_TRUE(buffer.has_value());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer->data) % kBufferAlignmentBytesDefault, 0u);
    EXPECT_EQ(buffer->size_bytes, 8192u);
    EXPECT_EQ(buffer->index, -1) << "not registered";
    distinct.insert(buffer->data);
    lent.push_back(*buffer);
  }
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_FALSE(pool.TryAcquire().has_value());
  pool.Release(lent.back());
  lent.pop_back();
  EXPECT_EQ(pool.free_count(), 1u);
  std::optional<Buffer> again = pool.TryAcquire();
  ASSERT_TRUE(again.has_value());
  lent.push_back(*again);
  EXPECT_EQ(pool.acquired_count(), 4u);
  EXPECT_EQ(pool.waits_count(), 0u);
  for (const Buffer& buffer : lent) pool.Release(buffer);
  EXPECT_EQ(pool.free_count(), 3u);
}

TEST(BufferPoolTest, RegisteredBuffersCarryTheirIndex) {
  for (bool sync : {false, true}) {
    std::unique_ptr<Backend> backend = testing::OpenTestBackend(sync);
    ASSERT_NE(backend, nullptr);
    Result<std::unique_ptr<BufferPool>> pool = BufferPool::Create(2, 4096);
    ASSERT_TRUE(pool.ok());
    ASSERT_OK((*pool)->RegisterWith(*backend));
    Buffer a = (*pool)->TryAcquire().value();
    Buffer b = (*pool)->TryAcquire().value();
    EXPECT_EQ(a.index, 0);
    EXPECT_EQ(b.index, 1);
    EXPECT_EQ(b.data, a.data + 4096) << "one slab";
    (*pool)->Release(a);
    (*pool)->Release(b);
  }
}

// Just enough of an executor: records what Schedule() is asked to resume.
class FakeReactor final : public Reactor {
 public:
  void Enqueue(IoRequest*, std::coroutine_handle<>) override { ADD_FAILURE() << "no I/O here"; }
  uint32_t current_queue() const noexcept override { return queue; }
  void Schedule(std::coroutine_handle<> handle, uint32_t q) override {
    scheduled.push_back({handle, q});
  }
  BufferPool& buffer_pool() noexcept override { return *pool; }

  uint32_t queue = 0;
  BufferPool* pool = nullptr;
  std::vector<std::pair<std::coroutine_handle<>, uint32_t>> scheduled;
};

// A coroutine that starts at once and frees itself when done.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

Detached AcquireInto(BufferPool* pool, std::optional<Buffer>* out) {
  *out = co_await pool->Acquire();
}

TEST(BufferPoolTest, AcquireWaitsInFifoOrderAndIsHandedTheReleasedBuffer) {
  Result<std::unique_ptr<BufferPool>> created = BufferPool::Create(1, 4096);
  ASSERT_TRUE(created.ok());
  BufferPool& pool = **created;
  FakeReactor reactor;
  reactor.pool = &pool;
  Reactor::SetCurrent(&reactor);

  std::optional<Buffer> first;
  AcquireInto(&pool, &first);
  ASSERT_TRUE(first.has_value()) << "a free buffer does not wait";
  std::optional<Buffer> second;
  std::optional<Buffer> third;
  reactor.queue = 7;
  AcquireInto(&pool, &second);
  reactor.queue = 9;
  AcquireInto(&pool, &third);
  EXPECT_FALSE(second.has_value());
  EXPECT_FALSE(third.has_value());
  EXPECT_EQ(pool.waits_count(), 2u);
  EXPECT_EQ(pool.waiters_count(), 2u);

  pool.Release(*first);
  ASSERT_EQ(reactor.scheduled.size(), 1u);
  EXPECT_EQ(reactor.scheduled[0].second, 7u) << "resumed in the queue it waited from";
  EXPECT_EQ(pool.free_count(), 0u) << "handed over, not freed";
  reactor.scheduled[0].first.resume();
  ASSERT_TRUE(second.has_value()) << "FIFO: the first waiter gets it";
  EXPECT_EQ(second->data, first->data);
  EXPECT_FALSE(third.has_value());

  pool.Release(*second);
  ASSERT_EQ(reactor.scheduled.size(), 2u);
  EXPECT_EQ(reactor.scheduled[1].second, 9u);
  reactor.scheduled[1].first.resume();
  ASSERT_TRUE(third.has_value());
  pool.Release(*third);
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_EQ(pool.acquired_count(), 3u);
  Reactor::SetCurrent(nullptr);
}

}  // namespace
}  // namespace dmalog::io

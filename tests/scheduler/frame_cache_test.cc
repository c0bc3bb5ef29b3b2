// The per-thread coroutine frame cache behind Task's operator new.
#include "scheduler/frame_cache.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "dmalog/task.h"

namespace dmalog {
namespace {

const bool kCacheOn = detail::FrameCacheEnabled();

Task<int> AddOne(int x) { co_return x + 1; }

Task<int> Chain(int depth) {
  int sum = 0;
  for (int i = 0; i < depth; ++i) sum += co_await AddOne(i);
  co_return sum;
}

TEST(FrameCacheTest, AFreedFrameIsReusedForAFrameOfItsClass) {
  if (!kCacheOn) GTEST_SKIP() << "the cache is off under the sanitizers";
  void* a = detail::AllocateFrame(100);
  std::memset(a, 0xab, 128);  // Rounded up to its class: 128 bytes are usable.
  detail::FreeFrame(a, 100);
  // 65..128 bytes share a class; the last frame freed comes back first.
  void* b = detail::AllocateFrame(120);
  EXPECT_EQ(a, b);
  detail::FreeFrame(b, 120);
  void* c = detail::AllocateFrame(200);  // Another class.
  EXPECT_NE(a, c);
  detail::FreeFrame(c, 200);
}

TEST(FrameCacheTest, FramesAbove2KiBAreNotCached) {
  void* big = detail::AllocateFrame(4096);
  std::memset(big, 0, 4096);
  detail::FreeFrame(big, 4096);
  SUCCEED();  // ASan and LeakSanitizer check this one.
}

// Frees `count` frames of `bytes` and returns how many the cache kept.
size_t KeptOf(size_t bytes, int count) {
  const size_t before = detail::CachedFrameCount();
  std::vector<void*> frames;
  for (int i = 0; i < count; ++i) frames.push_back(detail::AllocateFrame(bytes));
  const size_t emptied = detail::CachedFrameCount();
  EXPECT_LE(emptied, before);
  for (void* f : frames) detail::FreeFrame(f, bytes);
  const size_t kept = detail::CachedFrameCount() - emptied;
  // Taking them again empties the class first.
  frames.clear();
  for (size_t i = 0; i < kept; ++i) frames.push_back(detail::AllocateFrame(bytes));
  EXPECT_EQ(detail::CachedFrameCount(), emptied);
  for (void* f : frames) detail::FreeFrame(f, bytes);
  return kept;
}

TEST(FrameCacheTest, AClassHoldsABoundedNumberOfFrames) {
  if (!kCacheOn) GTEST_SKIP() << "the cache is off under the sanitizers";
  // 256 frames of a small class; a large class is capped by bytes (64 KiB).
  EXPECT_EQ(detail::FrameCacheClassFramesMax(100), 256u);
  EXPECT_EQ(KeptOf(100, 1000), 256u);
  EXPECT_EQ(detail::FrameCacheClassFramesMax(1500), 65536u / 1536u);
  EXPECT_EQ(KeptOf(1500, 1000), 65536u / 1536u);
  EXPECT_EQ(detail::FrameCacheClassFramesMax(2048), 32u);
}

// A thread_local constructed before the frame cache is destroyed after it;
// its destructor allocates a frame that another thread frees.
std::atomic<void*> frame_made_at_exit{nullptr};
struct AllocatesAtExit {
  ~AllocatesAtExit() { frame_made_at_exit.store(detail::AllocateFrame(100)); }
};

TEST(FrameCacheTest, AFrameMadeAfterTheThreadsCacheIsGoneStillFillsItsClass) {
  if (!kCacheOn) GTEST_SKIP() << "the cache is off under the sanitizers";
  std::thread t([] {
    static thread_local AllocatesAtExit at_exit;
    static_cast<void>(&at_exit);
    detail::FreeFrame(detail::AllocateFrame(100), 100);  // Makes the cache.
  });
  t.join();
  void* frame = frame_made_at_exit.load();
  ASSERT_NE(frame, nullptr);
  // Freed here into this thread's cache as a 65-128-byte frame, it may be
  // handed out for 128 bytes: it must hold them.
  EXPECT_GE(malloc_usable_size(frame), 128u);
  detail::FreeFrame(frame, 100);
}

TEST(FrameCacheTest, TasksReuseCachedFrames) {
  if (!kCacheOn) GTEST_SKIP() << "the cache is off under the sanitizers";
  // Warm up, then a chain of tasks takes its frames from the cache and
  // gives them back: the count is the same before and after.
  {
    Task<int> warm = Chain(3);
    warm.handle().resume();
  }
  const size_t before = detail::CachedFrameCount();
  ASSERT_GT(before, 0u);
  Task<int> task = Chain(3);
  EXPECT_EQ(detail::CachedFrameCount(), before - 1);  // Chain's frame.
  task.handle().resume();
  EXPECT_EQ(task.handle().promise().take(), 6);
  task = Task<int>();
  EXPECT_EQ(detail::CachedFrameCount(), before);
}

TEST(FrameCacheTest, FramesFreedOnAnotherThreadJoinThatThreadsCache) {
  // A frame made here and destroyed on another thread (as a task spawned
  // from one executor and finished on another) must be freed safely there,
  // including during that thread's exit.
  Task<int> task = Chain(10);
  std::thread t([&task] {
    Task<int> mine = std::move(task);
    static_cast<void>(mine);  // Destroyed unstarted on this thread.
  });
  t.join();
  // Frames still work on this thread afterwards.
  Task<int> again = Chain(5);
  auto h = again.handle();
  h.resume();
  ASSERT_TRUE(h.done());
  EXPECT_EQ(h.promise().take(), 15);
}

}  // namespace
}  // namespace dmalog

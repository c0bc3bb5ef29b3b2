// BufferPool: a fixed set of aligned I/O buffers, one pool per executor.
//
// The buffers are carved from one slab allocated at creation; the pool never
// allocates afterwards. The executor registers them with its backend
// (RegisterWith) so reads and writes can use io_uring fixed buffers; when
// registration fails the buffers still work, with index -1.
//
// When the pool is empty, Acquire() suspends the caller in a FIFO of waiters
// (back-pressure); Release() hands the buffer straight to the first waiter
// and reschedules it through Reactor::Current() in the task queue it waited
// from. Executor thread only; not thread-safe.
#pragma once

#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dmalog/status.h"
#include "io/backend.h"

namespace dmalog::io {

inline constexpr uint32_t kBufferPoolCountMax = 4096;
inline constexpr uint32_t kBufferSizeBytesMax = 64u << 20;
inline constexpr uint64_t kBufferPoolBytesMax = 1ull << 30;
inline constexpr uint32_t kBufferAlignmentBytesDefault = 4096;
// Tasks waiting in Acquire() at once (an assertion: more means a leak).
inline constexpr uint32_t kBufferPoolWaitersMax = 1u << 20;
static_assert(kBufferSizeBytesMax <= kBufferPoolBytesMax);
static_assert(kBufferSizeBytesMax % kBufferAlignmentBytesDefault == 0);

// One buffer lent by the pool. `data` is not owned by the holder: give the
// Buffer back with BufferPool::Release, unchanged.
struct Buffer {
  uint8_t* data = nullptr;
  uint32_t size_bytes = 0;
  // The registered (fixed) buffer index to put in IoRequest::buf_index, or -1
  // when the pool is not registered with the backend.
  int32_t index = -1;
};

class BufferPool {
 public:
  // `count` buffers of `size_bytes`, each aligned to `alignment_bytes` (a
  // power of two that divides size_bytes; use the largest memory alignment
  // of the files the buffers serve). Limits: kBufferPoolCountMax,
  // kBufferSizeBytesMax, kBufferPoolBytesMax.
  static Result<std::unique_ptr<BufferPool>> Create(
      uint32_t count, uint32_t size_bytes, uint32_t alignment_bytes = kBufferAlignmentBytesDefault);
  // Requires every buffer released and no waiter.
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Registers the buffers with `backend` (borrowed for the call). On error
  // the pool keeps working with index -1; the Status says why (the caller
  // may log it). Call while no buffer is lent.
  Status RegisterWith(Backend& backend);
  bool registered() const noexcept { return registered_; }

  class [[nodiscard]] AcquireAwaitable {
   public:
    explicit AcquireAwaitable(BufferPool* pool) : pool_(pool) {}
    AcquireAwaitable(const AcquireAwaitable&) = delete;
    AcquireAwaitable& operator=(const AcquireAwaitable&) = delete;

    bool await_ready() noexcept;
    // Requires an executor thread (Reactor::Current() != nullptr).
    void await_suspend(std::coroutine_handle<> waiter);
    Buffer await_resume() noexcept;

   private:
    friend class BufferPool;
    BufferPool* pool_;  // Not owned; outlives the awaitable.
    std::optional<Buffer> buffer_;
    std::coroutine_handle<> waiter_;
    uint32_t queue_ = 0;
    AcquireAwaitable* next_ = nullptr;  // Waiter FIFO link.
  };

  // A free buffer, or nullopt when all are lent.
  std::optional<Buffer> TryAcquire() noexcept;
  // `co_await pool.Acquire()` yields a Buffer, waiting while none is free.
  AcquireAwaitable Acquire() noexcept { return AcquireAwaitable(this); }
  // Gives `buffer` back; if a task waits, hands it to the first one and
  // schedules it through Reactor::Current().
  void Release(Buffer buffer);

  uint32_t count() const noexcept { return count_; }
  uint32_t size_bytes() const noexcept { return size_bytes_; }
  uint32_t free_count() const noexcept { return static_cast<uint32_t>(free_.size()); }
  uint32_t waiters_count() const noexcept { return waiters_count_; }
  // Buffers handed out so far (TryAcquire, Acquire and direct hand-offs).
  uint64_t acquired_count() const noexcept { return acquired_count_; }
  // Acquire() calls that had to wait.
  uint64_t waits_count() const noexcept { return waits_count_; }

 private:
  BufferPool(uint8_t* slab, uint32_t count, uint32_t size_bytes);
  Buffer MakeBuffer(uint32_t slot) noexcept;
  uint32_t SlotOf(const Buffer& buffer) const noexcept;
  void PushWaiter(AcquireAwaitable* waiter) noexcept;
  AcquireAwaitable* PopWaiter() noexcept;

  uint8_t* const slab_;  // Owned; std::free in the destructor.
  const uint32_t count_;
  const uint32_t size_bytes_;
  bool registered_ = false;
  std::vector<uint32_t> free_;  // Capacity reserved at creation.
  AcquireAwaitable* waiters_head_ = nullptr;
  AcquireAwaitable* waiters_tail_ = nullptr;
  uint32_t waiters_count_ = 0;
  uint64_t acquired_count_ = 0;
  uint64_t waits_count_ = 0;
};

}  // namespace dmalog::io

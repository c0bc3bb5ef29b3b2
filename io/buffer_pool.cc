#include "io/buffer_pool.h"

#include <sys/uio.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <string>

#include "io/reactor.h"

namespace dmalog::io {
namespace {

bool IsPowerOfTwo(uint64_t x) noexcept { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace

Result<std::unique_ptr<BufferPool>> BufferPool::Create(uint32_t count, uint32_t size_bytes,
                                                       uint32_t alignment_bytes) {
  if (count == 0 || count > kBufferPoolCountMax) {
    return Status::InvalidArgument("BufferPool: count must be in 1.." +
                                   std::to_string(kBufferPoolCountMax));
  }
  if (size_bytes == 0 || size_bytes > kBufferSizeBytesMax) {
    return Status::InvalidArgument("BufferPool: size_bytes must be in 1.." +
                                   std::to_string(kBufferSizeBytesMax));
  }
  if (!IsPowerOfTwo(alignment_bytes) || size_bytes % alignment_bytes != 0) {
    return Status::InvalidArgument(
        "BufferPool: alignment_bytes " + std::to_string(alignment_bytes) +
        " must be a power of two dividing size_bytes " + std::to_string(size_bytes));
  }
  const uint64_t slab_bytes = uint64_t{count} * size_bytes;
  if (slab_bytes > kBufferPoolBytesMax) {
    return Status::InvalidArgument("BufferPool: count * size_bytes exceeds " +
                                   std::to_string(kBufferPoolBytesMax) + " bytes");
  }
  void* slab = std::aligned_alloc(alignment_bytes, slab_bytes);
  if (slab == nullptr) {
    return Status::IOError("BufferPool: cannot allocate " + std::to_string(slab_bytes) +
                           " bytes (ENOMEM); lower the buffer count or size");
  }
  // Touch every page now so the I/O path never takes a first-touch fault.
  std::memset(slab, 0, slab_bytes);
  return std::unique_ptr<BufferPool>(
      new BufferPool(static_cast<uint8_t*>(slab), count, size_bytes));
}

BufferPool::BufferPool(uint8_t* slab, uint32_t count, uint32_t size_bytes)
    : slab_(slab), count_(count), size_bytes_(size_bytes) {
  free_.reserve(count);
  // Pop from the back: hand out slot 0 first.
  for (uint32_t slot = count; slot > 0; --slot) free_.push_back(slot - 1);
}

BufferPool::~BufferPool() {
  assert(free_.size() == count_ && "BufferPool destroyed with buffers lent");
  assert(waiters_head_ == nullptr && "BufferPool destroyed with waiters");
  std::free(slab_);
}

Status BufferPool::RegisterWith(Backend& backend) {
  assert(free_.size() == count_ && "register while no buffer is lent");
  std::vector<iovec> iovecs(count_);
  for (uint32_t slot = 0; slot < count_; ++slot) {
    iovecs[slot] = iovec{slab_ + uint64_t{slot} * size_bytes_, size_bytes_};
  }
  const Status status = backend.RegisterBuffers(iovecs);
  registered_ = status.ok();
  return status;
}

Buffer BufferPool::MakeBuffer(uint32_t slot) noexcept {
  assert(slot < count_);
  acquired_count_++;
  return Buffer{slab_ + uint64_t{slot} * size_bytes_, size_bytes_,
                registered_ ? static_cast<int32_t>(slot) : -1};
}

uint32_t BufferPool::SlotOf(const Buffer& buffer) const noexcept {
  assert(buffer.data >= slab_);
  const uint64_t offset = static_cast<uint64_t>(buffer.data - slab_);
  assert(offset % size_bytes_ == 0 && "not a buffer of this pool");
  const auto slot = static_cast<uint32_t>(offset / size_bytes_);
  assert(slot < count_);
  assert(buffer.size_bytes == size_bytes_);
  return slot;
}

std::optional<Buffer> BufferPool::TryAcquire() noexcept {
  if (free_.empty()) return std::nullopt;
  const uint32_t slot = free_.back();
  free_.pop_back();
  return MakeBuffer(slot);
}

void BufferPool::Release(Buffer buffer) {
  const uint32_t slot = SlotOf(buffer);
  AcquireAwaitable* waiter = PopWaiter();
  if (waiter == nullptr) {
    assert(free_.size() < count_ && "buffer released twice");
    free_.push_back(slot);  // Within the reserved capacity: no allocation.
    return;
  }
  waiter->buffer_ = MakeBuffer(slot);
  Reactor* reactor = Reactor::Current();
  assert(reactor != nullptr && "a waiter exists only on an executor thread");
  reactor->Schedule(waiter->waiter_, waiter->queue_);
}

void BufferPool::PushWaiter(AcquireAwaitable* waiter) noexcept {
  waiter->next_ = nullptr;
  if (waiters_tail_ != nullptr) {
    waiters_tail_->next_ = waiter;
  } else {
    waiters_head_ = waiter;
  }
  waiters_tail_ = waiter;
  waiters_count_++;
  assert(waiters_count_ <= kBufferPoolWaitersMax);
}

BufferPool::AcquireAwaitable* BufferPool::PopWaiter() noexcept {
  AcquireAwaitable* waiter = waiters_head_;
  if (waiter == nullptr) return nullptr;
  waiters_head_ = waiter->next_;
  if (waiters_head_ == nullptr) waiters_tail_ = nullptr;
  waiter->next_ = nullptr;
  waiters_count_--;
  return waiter;
}

bool BufferPool::AcquireAwaitable::await_ready() noexcept {
  buffer_ = pool_->TryAcquire();
  return buffer_.has_value();
}

void BufferPool::AcquireAwaitable::await_suspend(std::coroutine_handle<> waiter) {
  Reactor* reactor = Reactor::Current();
  assert(reactor != nullptr && "BufferPool::Acquire awaited outside an executor thread");
  waiter_ = waiter;
  queue_ = reactor->current_queue();
  pool_->waits_count_++;
  pool_->PushWaiter(this);
}

Buffer BufferPool::AcquireAwaitable::await_resume() noexcept {
  assert(buffer_.has_value());
  return *buffer_;
}

}  // namespace dmalog::io

// SpscQueue<T, N>: a bounded, lock-free, single-producer single-consumer ring.
//
// One thread pushes, one (other) thread pops; neither ever blocks. A full ring
// makes TryPush return false: that is back-pressure, and the producer retries
// later. Head and tail are on separate cache lines, and each side caches the
// other's index so that the common case touches only its own line.
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

namespace dmalog::sched {

inline constexpr size_t kCacheLineBytes = 64;

template <typename T, uint32_t kCapacity>
class SpscQueue {
  static_assert(kCapacity >= 2 && (kCapacity & (kCapacity - 1)) == 0,
                "capacity must be a power of two");
  static_assert(std::is_trivially_copyable_v<T>, "slots are plain values");

 public:
  static constexpr uint32_t capacity() noexcept { return kCapacity; }

  // Producer only.
  bool TryPush(const T& value) noexcept {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cached_ >= kCapacity) {
      head_cached_ = head_.load(std::memory_order_acquire);
      if (tail - head_cached_ >= kCapacity) return false;
    }
    slots_[tail & (kCapacity - 1)] = value;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer only.
  std::optional<T> TryPop() noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cached_) {
      tail_cached_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cached_) return std::nullopt;
    }
    T value = slots_[head & (kCapacity - 1)];
    head_.store(head + 1, std::memory_order_release);
    return value;
  }

  // Either side (or anyone, approximately): true when nothing is queued.
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  alignas(kCacheLineBytes) std::atomic<uint64_t> head_{0};  // Written by the consumer.
  uint64_t tail_cached_ = 0;                                // Consumer's view of tail_.
  alignas(kCacheLineBytes) std::atomic<uint64_t> tail_{0};  // Written by the producer.
  uint64_t head_cached_ = 0;                                // Producer's view of head_.
  alignas(kCacheLineBytes) std::array<T, kCapacity> slots_{};
};

}  // namespace dmalog::sched

// RequestPool<T, N>: N requests allocated once, when the engine opens, and
// recycled between the API threads that take them and the executor threads
// that give them back, so an asynchronous or sync=false call allocates
// nothing on its way to the shard.
//
// Why: a request malloc'ed on an API thread and freed on an executor never
// returns to the API thread's cache, so every malloc took glibc's slow path
// and the arena lock (dmalog_bench --benchmarks=fillseq --sync=0
// --threads=1: _int_malloc was 28% and pthread_mutex_lock 8% of the calling
// thread's CPU).
//
// When all N are in use, Take returns nullptr and the caller allocates one
// (New): the pool bounds its memory, not the caller. Give back with Release,
// which tells pooled requests from heap ones.
//
// Thread-safety: Take, New and Release from any thread. The pool must
// outlive every request it handed out.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>

namespace dmalog::engine {

// The free list is a lock-free stack of indices (Treiber's), with a
// generation count beside the top index so that a pop racing a pop and push
// of the same request cannot succeed (the ABA problem). Unlike a bounded
// ring, it never reports a spurious "full" or "empty": a ring's cell stays
// taken until a slow consumer finishes with it (a first version on
// Vyukov's MPMC ring failed request_pool_test that way).
template <typename T, uint32_t kCapacity>
class RequestPool {
  static_assert(kCapacity > 0 && kCapacity < (uint64_t{1} << 32) - 1, "indices fit 32 bits");

 public:
  RequestPool()
      : storage_(std::make_unique<T[]>(kCapacity)),
        next_(std::make_unique<std::atomic<uint32_t>[]>(kCapacity)) {
    for (uint32_t i = 0; i < kCapacity; ++i) next_[i].store(i, std::memory_order_relaxed);
    top_.store(kCapacity, std::memory_order_relaxed);  // Request kCapacity - 1 on top.
  }
  RequestPool(const RequestPool&) = delete;
  RequestPool& operator=(const RequestPool&) = delete;

  // A request from the pool, or from the heap when the pool is empty. Either
  // way it must be given back with Release. Its fields keep the values of
  // its last use: the caller sets every one it relies on.
  T* Take() {
    uint64_t top = top_.load(std::memory_order_acquire);
    // Bounded by contention: each retry follows another thread's success.
    for (;;) {
      const uint32_t link = Link(top);
      if (link == kEmpty) return new T();
      const uint32_t next = next_[link - 1].load(std::memory_order_relaxed);
      if (top_.compare_exchange_weak(top, Top(top, next), std::memory_order_acquire,
                                     std::memory_order_acquire)) {
        return &storage_[link - 1];
      }
    }
  }

  void Release(T* request) noexcept {
    if (!Owns(request)) {
      delete request;
      return;
    }
    const auto index = static_cast<uint32_t>(request - storage_.get());
    uint64_t top = top_.load(std::memory_order_relaxed);
    // Bounded by contention: each retry follows another thread's success.
    do {
      assert(Link(top) != index + 1 && "a pooled request was released twice");
      next_[index].store(Link(top), std::memory_order_relaxed);
    } while (!top_.compare_exchange_weak(top, Top(top, index + 1), std::memory_order_release,
                                         std::memory_order_relaxed));
  }

  bool Owns(const T* request) const noexcept {
    const auto at = reinterpret_cast<uintptr_t>(request);
    const auto first = reinterpret_cast<uintptr_t>(storage_.get());
    return at >= first && at < first + kCapacity * sizeof(T);
  }

 private:
  // A link is an index + 1; 0 ends the list.
  static constexpr uint32_t kEmpty = 0;
  static uint32_t Link(uint64_t top) noexcept { return static_cast<uint32_t>(top); }
  // The new top word: the next generation, pointing at `link`.
  static uint64_t Top(uint64_t old_top, uint32_t link) noexcept {
    return (((old_top >> 32) + 1) << 32) | link;
  }

  std::unique_ptr<T[]> storage_;
  std::unique_ptr<std::atomic<uint32_t>[]> next_;  // next_[i]: the link below request i.
  std::atomic<uint64_t> top_{0};                   // Generation << 32 | link of the top.
};

}  // namespace dmalog::engine

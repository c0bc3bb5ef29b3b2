// AwaitSlots: the rendezvous words of CallbackAwaitable (callback_awaitable.h),
// kept by the executor instead of in the awaiting task's frame.
//
// Why not in the frame: the operation's callback may run after the frame is
// gone. An executor that stops on its own (a broken ring) destroys its
// suspended tasks, while their operations still run on other executors and
// call back later. The callback must then find a word that still exists
// and says "abandoned", not freed memory.
//
// Lifetime: the slots live as long as their Executor object, which
// ExecutorGroup keeps until it is destroyed, after every callback of the
// group's calls has run. A slot is taken and given back on its executor's
// thread only. An abandoned slot is never given back (its callback may
// still come); it is reclaimed with the executor.
//
// No allocation on the hot path: kCapacity slots are made when the executor
// starts; beyond them a slot comes from the heap and is deleted by whoever
// touches it last.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <vector>

namespace dmalog::sched {

// One cache line each: the slots of different awaits are swapped by
// different threads.
struct alignas(64) AwaitSlot {
  // CallbackAwaitable's state: kStarting, kSuspended, ... (see there).
  std::atomic<uint32_t> state{0};
  void* owner = nullptr;  // The awaitable; set on its executor before the callback can run.
  bool from_heap = false;
};

class AwaitSlots {
 public:
  // Awaits in progress on one executor before slots come from the heap.
  static constexpr uint32_t kCapacity = 1024;

  AwaitSlots() : slots_(std::make_unique<AwaitSlot[]>(kCapacity)) {
    free_.reserve(kCapacity);
    for (uint32_t i = kCapacity; i > 0; --i) free_.push_back(i - 1);
  }
  AwaitSlots(const AwaitSlots&) = delete;
  AwaitSlots& operator=(const AwaitSlots&) = delete;

  // Executor thread. The slot's state is 0 (kStarting).
  AwaitSlot* Take() {
    if (free_.empty()) {
      auto* slot = new AwaitSlot();
      slot->from_heap = true;
      return slot;
    }
    AwaitSlot* slot = &slots_[free_.back()];
    free_.pop_back();
    slot->state.store(0, std::memory_order_relaxed);
    return slot;
  }

  // Executor thread; no callback may touch `slot` any more.
  void GiveBack(AwaitSlot* slot) {
    if (slot->from_heap) {
      delete slot;
      return;
    }
    const auto index = static_cast<uint32_t>(slot - slots_.get());
    assert(index < kCapacity && free_.size() < kCapacity);
    free_.push_back(index);
  }

 private:
  std::unique_ptr<AwaitSlot[]> slots_;
  std::vector<uint32_t> free_;  // Indices into slots_; capacity kCapacity.
};

}  // namespace dmalog::sched

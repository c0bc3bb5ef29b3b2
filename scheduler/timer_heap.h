// TimerHeap: the executor's sleeping tasks, a min-heap on deadline.
//
// Executor thread only. Timers fire in deadline order (FIFO among equal
// deadlines). Capacity is bounded by kTimersMax (an asserted invariant).
#pragma once

#include <coroutine>
#include <cstdint>
#include <vector>

#include "scheduler/task_queue.h"

namespace dmalog::sched {

inline constexpr uint32_t kTimersMax = 1u << 16;

struct Timer {
  uint64_t deadline_ns = 0;
  uint64_t sequence = 0;  // Tie-break: earlier arm fires first.
  std::coroutine_handle<> waiter;
  QueueId queue = kDefaultQueue;
};

class TimerHeap {
 public:
  TimerHeap();
  bool empty() const noexcept { return heap_.empty(); }
  uint32_t size() const noexcept { return static_cast<uint32_t>(heap_.size()); }
  // Requires !empty().
  uint64_t next_deadline_ns() const noexcept;
  void Add(uint64_t deadline_ns, std::coroutine_handle<> waiter, QueueId queue);
  // Removes and returns the earliest timer. Requires !empty().
  Timer PopEarliest();
  // Forgets every timer without resuming it (shutdown).
  void Clear() noexcept { heap_.clear(); }

 private:
  std::vector<Timer> heap_;
  uint64_t next_sequence_ = 0;
};

}  // namespace dmalog::sched

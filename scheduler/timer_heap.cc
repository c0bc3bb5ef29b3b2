#include "scheduler/timer_heap.h"

#include <algorithm>
#include <cassert>

namespace dmalog::sched {
namespace {

// std::*_heap build a max-heap; "greater" puts the earliest timer on top.
bool Later(const Timer& a, const Timer& b) noexcept {
  if (a.deadline_ns != b.deadline_ns) return a.deadline_ns > b.deadline_ns;
  return a.sequence > b.sequence;
}

}  // namespace

TimerHeap::TimerHeap() { heap_.reserve(64); }

uint64_t TimerHeap::next_deadline_ns() const noexcept {
  assert(!heap_.empty());
  return heap_.front().deadline_ns;
}

void TimerHeap::Add(uint64_t deadline_ns, std::coroutine_handle<> waiter, QueueId queue) {
  assert(waiter);
  assert(heap_.size() < kTimersMax && "timer limit");
  heap_.push_back(Timer{deadline_ns, next_sequence_++, waiter, queue});
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

Timer TimerHeap::PopEarliest() {
  assert(!heap_.empty());
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  Timer timer = heap_.back();
  heap_.pop_back();
  return timer;
}

}  // namespace dmalog::sched

// AwaitCallback: awaits, from a task on an executor, an operation that
// reports through a callback (the engine's asynchronous forms), so that one
// implementation serves the asynchronous and the coroutine form of a call.
//
//   Result<X> r = co_await AwaitCallback<Result<X>>(
//       [&](std::function<void(Result<X>)> done) { StartOp(std::move(done)); });
//
// `start` runs inside await_suspend, so what it captures by reference lives
// long enough. The callback it is given must be called exactly once: inline
// before `start` returns, or later on any executor thread of the awaiting
// task's group. The task resumes on its own executor, in its own queue:
// at once if the callback already ran, else by a message to that executor.
// If the group stops before the resumption runs, the task is destroyed with
// its executor, as every suspended task is. If its executor stops first (a
// broken ring) the callback may come after the task is gone: the awaitable's
// state lives in an executor-owned slot (await_slots.h) that tells it so.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <functional>
#include <optional>
#include <utility>

#include "scheduler/await_slots.h"
#include "scheduler/executor.h"
#include "scheduler/executor_group.h"

namespace dmalog::sched {

template <typename R, typename StartFn>
class [[nodiscard]] CallbackAwaitable {
 public:
  explicit CallbackAwaitable(StartFn start) : start_(std::move(start)) {}
  CallbackAwaitable(const CallbackAwaitable&) = delete;
  CallbackAwaitable& operator=(const CallbackAwaitable&) = delete;
  // Destroyed while suspended only when its executor stops with the task
  // still waiting: the slot then says so to the callback, which may still
  // come from another executor (or from the teardown of the operation).
  ~CallbackAwaitable() {
    if (slot_ == nullptr) return;  // Never started.
    assert(Executor::Current() == home_);
    uint32_t state = kSuspended;
    if (slot_->state.compare_exchange_strong(state, kAbandoned, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
      return;  // The callback will find kAbandoned (and delete a heap slot).
    }
    WaitCompleted(*slot_);
    home_->await_slots().GiveBack(slot_);
  }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> waiter) {
    home_ = Executor::Current();
    assert(home_ != nullptr && "AwaitCallback outside an executor");
    queue_ = home_->current_queue();
    waiter_ = waiter;
    slot_ = home_->await_slots().Take();
    slot_->owner = this;
    // Captures one pointer: std::function keeps it without allocating.
    start_(std::function<void(R)>([slot = slot_](R result) { Complete(slot, std::move(result)); }));
    uint32_t state = kStarting;
    if (slot_->state.compare_exchange_strong(state, kSuspended, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
      return true;
    }
    // The callback ran (inline, or on another executor before this point),
    // or is storing the result now; resuming is left to us.
    WaitCompleted(*slot_);
    return false;
  }
  R await_resume() {
    assert(result_.has_value());
    return std::move(*result_);
  }

 private:
  // The slot's state. kStarting -> kSuspended -> kCompleting -> kCompleted,
  // or kStarting -> kCompleting -> kCompleted (the callback came before
  // await_suspend's end), or kSuspended -> kAbandoned (the task was
  // destroyed first). The frame may be touched by the callback only in
  // kCompleting, which the frame's owner waits out.
  enum : uint32_t { kStarting = 0, kSuspended, kCompleting, kCompleted, kAbandoned };

  // Bounded: kCompleting lasts while the callback moves one result. Yields
  // now and then, in case the completing thread was preempted on this CPU.
  static void WaitCompleted(const AwaitSlot& slot) {
    for (uint32_t polls = 1; slot.state.load(std::memory_order_acquire) == kCompleting; ++polls) {
      SpinPause(polls);
    }
    assert(slot.state.load(std::memory_order_acquire) == kCompleted);
  }

  static void Complete(AwaitSlot* slot, R result) {
    uint32_t state = slot->state.load(std::memory_order_acquire);
    // Bounded: the state changes at most once (to kSuspended or
    // kAbandoned) before the callback claims it.
    for (;;) {
      assert(state != kCompleting && state != kCompleted && "an asynchronous callback ran twice");
      if (state == kAbandoned) {
        if (slot->from_heap) delete slot;
        return;  // The task is gone; `result` is dropped here.
      }
      if (slot->state.compare_exchange_weak(state, kCompleting, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
        break;
      }
    }
    auto* self = static_cast<CallbackAwaitable*>(slot->owner);
    self->result_.emplace(std::move(result));
    const bool suspended = state == kSuspended;
    Executor* const home = self->home_;
    const std::coroutine_handle<> waiter = self->waiter_;
    const QueueId queue = self->queue_;
    slot->state.store(kCompleted, std::memory_order_release);
    // From here the task may run, and free its frame and the slot.
    if (!suspended) return;  // await_suspend resumes the task itself.
    if (Executor::Current() == home) {
      home->Schedule(waiter, queue);
      return;
    }
    const Message msg{&RunResume, &DropResume, waiter.address(), queue};
    // False only when the group stopped: the task is destroyed with its
    // executor, after this, since the result is already stored.
    if (!home->group()->Post(home->shard(), msg)) msg.drop(msg.arg);
  }
  static void RunResume(Executor& executor, void* arg, uint64_t queue) {
    executor.Schedule(std::coroutine_handle<>::from_address(arg), static_cast<uint32_t>(queue));
  }
  static void DropResume(void* /*arg*/) {}

  StartFn start_;
  Executor* home_ = nullptr;
  QueueId queue_ = kDefaultQueue;
  std::coroutine_handle<> waiter_;
  AwaitSlot* slot_ = nullptr;  // Taken from home_'s slots in await_suspend.
  std::optional<R> result_;
};

// `start(std::function<void(R)> done)` starts the operation; the awaitable
// yields what `done` is called with.
template <typename R, typename StartFn>
CallbackAwaitable<R, StartFn> AwaitCallback(StartFn start) {
  return CallbackAwaitable<R, StartFn>(std::move(start));
}

}  // namespace dmalog::sched

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
// its executor, as every suspended task is.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <functional>
#include <optional>
#include <utility>

#include "scheduler/executor.h"
#include "scheduler/executor_group.h"

namespace dmalog::sched {

template <typename R, typename StartFn>
class [[nodiscard]] CallbackAwaitable {
 public:
  explicit CallbackAwaitable(StartFn start) : start_(std::move(start)) {}
  CallbackAwaitable(const CallbackAwaitable&) = delete;
  CallbackAwaitable& operator=(const CallbackAwaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> waiter) {
    home_ = Executor::Current();
    assert(home_ != nullptr && "AwaitCallback outside an executor");
    queue_ = home_->current_queue();
    waiter_ = waiter;
    start_(std::function<void(R)>([this](R result) { Complete(std::move(result)); }));
    // Suspend unless the callback already ran (inline, or on another
    // executor before this point): then whoever completed left resuming to us.
    return state_.exchange(kSuspended, std::memory_order_acq_rel) != kCompleted;
  }
  R await_resume() {
    assert(result_.has_value());
    return std::move(*result_);
  }

 private:
  enum : uint32_t { kStarting = 0, kSuspended = 1, kCompleted = 2 };

  void Complete(R result) {
    assert(!result_.has_value() && "an asynchronous callback ran twice");
    result_.emplace(std::move(result));
    // Before await_suspend's exchange, await_suspend resumes the task
    // itself; this must touch nothing after the exchange then.
    if (state_.exchange(kCompleted, std::memory_order_acq_rel) != kSuspended) return;
    if (Executor::Current() == home_) {
      home_->Schedule(waiter_, queue_);
      return;
    }
    const Message msg{&RunResume, &DropResume, this, queue_};
    // False only when the group stopped: the task is destroyed with its
    // executor, and this awaitable with it.
    if (!home_->group()->Post(home_->shard(), msg)) msg.drop(msg.arg);
  }
  static void RunResume(Executor& executor, void* arg, uint64_t queue) {
    auto* self = static_cast<CallbackAwaitable*>(arg);
    executor.Schedule(self->waiter_, static_cast<uint32_t>(queue));
  }
  static void DropResume(void* /*arg*/) {}

  StartFn start_;
  Executor* home_ = nullptr;
  QueueId queue_ = kDefaultQueue;
  std::coroutine_handle<> waiter_;
  std::optional<R> result_;
  std::atomic<uint32_t> state_{kStarting};
};

// `start(std::function<void(R)> done)` starts the operation; the awaitable
// yields what `done` is called with.
template <typename R, typename StartFn>
CallbackAwaitable<R, StartFn> AwaitCallback(StartFn start) {
  return CallbackAwaitable<R, StartFn>(std::move(start));
}

}  // namespace dmalog::sched

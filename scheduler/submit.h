// submit_to: run a callable on another shard and get its result back.
//
//   Inside an executor (in a Task):  T value = co_await submit_to(shard, fn);
//   Outside (any other thread):      group.submit_to(shard, fn) -> std::future
//
// `fn` is a callable returning T or Task<T> (T may be void). It runs on the
// target shard as a root task of the target queue (default: kDefaultQueue,
// which must exist there). The result returns over the reverse ring and
// resumes the awaiting coroutine in its own queue.
//
// Allocation: the convenience closure form allocates the call's coroutine
// frame (which holds `fn`) and, inside executors, one reply block; the target
// adds its root-task wrapper. For allocation-free messaging use
// Executor::TrySend with a Message (two function pointers and an argument).
//
// Shutdown: if the group stops before the call runs or replies, an awaiting
// coroutine is destroyed with its executor; a future receives Aborted.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "dmalog/status.h"
#include "scheduler/executor.h"
#include "scheduler/task.h"

namespace dmalog::sched {
namespace detail {

template <typename R>
struct UnwrapTask {
  using type = R;
};
template <typename T>
struct UnwrapTask<Task<T>> {
  using type = T;
};
// What co_await submit_to(shard, fn) yields.
template <typename Fn>
using CallResult = typename UnwrapTask<std::invoke_result_t<Fn&>>::type;

template <typename Fn>
inline constexpr bool kReturnsTask = !std::is_same_v<std::invoke_result_t<Fn&>, CallResult<Fn>>;

// What a future yields: T, plus Aborted when the group stopped first.
template <typename T>
struct OrAbortedT {
  using type = Result<T>;
};
template <>
struct OrAbortedT<void> {
  using type = Status;
};
template <>
struct OrAbortedT<Status> {
  using type = Status;
};
template <typename U>
struct OrAbortedT<Result<U>> {
  using type = Result<U>;
};
template <typename T>
using OrAborted = typename OrAbortedT<T>::type;

// Runs fn (plain or coroutine) to a value. `fn` is borrowed by the frame.
template <typename Fn, typename T = CallResult<Fn>>
Task<T> Call(Fn& fn) {
  if constexpr (kReturnsTask<Fn>) {
    if constexpr (std::is_void_v<T>) {
      co_await fn();
    } else {
      co_return co_await fn();
    }
  } else if constexpr (std::is_void_v<T>) {
    fn();
    co_return;
  } else {
    co_return fn();
  }
}

// ---- Messages carrying a call's coroutine frame.

inline void RunCall(Executor& target, void* arg, uint64_t queue) {
  Task<void> task(Task<void>::Handle::from_address(arg));
  target.Spawn(static_cast<QueueId>(queue), std::move(task));
}
inline void DropCall(void* arg) { Task<void>::Handle::from_address(arg).destroy(); }

template <typename T>
class SubmitAwaitable;

template <typename T>
struct ReplyBlock {
  using Value = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<Value> value;
  SubmitAwaitable<T>* awaitable = nullptr;  // Lives on the source shard.
};

template <typename T>
void RunReply(Executor& source, void* arg, uint64_t /*tag*/);
template <typename T>
void DropReply(void* arg) {
  delete static_cast<ReplyBlock<T>*>(arg);
}

// On the target: computes, then sends the reply block home.
template <typename T, typename Fn>
Task<void> RemoteCall(Fn fn, std::unique_ptr<ReplyBlock<T>> reply, uint32_t reply_to) {
  if constexpr (std::is_void_v<T>) {
    co_await Call(fn);
    reply->value.emplace(true);
  } else {
    reply->value.emplace(co_await Call(fn));
  }
  co_await SendAwaitable(reply_to, Message{&RunReply<T>, &DropReply<T>, reply.release(), 0});
}

template <typename T>
class [[nodiscard]] SubmitAwaitable {
 public:
  SubmitAwaitable(uint32_t target, Message request, ReplyBlock<T>* reply) : reply_(reply) {
    send_.target = target;
    send_.msg = request;
  }
  SubmitAwaitable(const SubmitAwaitable&) = delete;
  SubmitAwaitable& operator=(const SubmitAwaitable&) = delete;
  ~SubmitAwaitable() {
    if (!send_.sent) send_.msg.drop(send_.msg.arg);  // Also frees reply_.
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) {
    Executor* ex = Executor::Current();
    assert(ex != nullptr && "co_await submit_to outside an executor");
    waiter_ = waiter;
    queue_ = ex->current_queue();
    reply_->awaitable = this;
    ex->Send(&send_);  // The reply, not the send, resumes us.
  }
  T await_resume() {
    assert(result_.has_value());
    if constexpr (!std::is_void_v<T>) return std::move(*result_);
  }

 private:
  friend void RunReply<T>(Executor&, void*, uint64_t);
  PendingSend send_;
  ReplyBlock<T>* reply_;  // Owned by the request until it runs, then by the reply.
  std::coroutine_handle<> waiter_;
  QueueId queue_ = kDefaultQueue;
  std::optional<typename ReplyBlock<T>::Value> result_;
};

template <typename T>
void RunReply(Executor& source, void* arg, uint64_t /*tag*/) {
  std::unique_ptr<ReplyBlock<T>> reply(static_cast<ReplyBlock<T>*>(arg));
  SubmitAwaitable<T>* awaitable = reply->awaitable;
  assert(awaitable != nullptr && reply->value.has_value());
  awaitable->result_ = std::move(reply->value);
  source.Schedule(awaitable->waiter_, awaitable->queue_);
}

// ---- Futures, for threads that are not executors.

// Holds the promise; if destroyed unfulfilled (the group stopped before the
// call ran), fulfils it with Aborted.
template <typename R>
class FutureSlot {
 public:
  FutureSlot() = default;
  FutureSlot(FutureSlot&& other) noexcept
      : promise_(std::move(other.promise_)), armed_(std::exchange(other.armed_, false)) {}
  FutureSlot& operator=(FutureSlot&&) = delete;
  ~FutureSlot() {
    if (armed_)
      promise_.set_value(
          R(Status::Aborted("submit_to: the executor group stopped "
                            "before the call completed")));
  }
  std::future<R> get_future() { return promise_.get_future(); }
  void Set(R value) {
    assert(armed_);
    armed_ = false;
    promise_.set_value(std::move(value));
  }

 private:
  std::promise<R> promise_;
  bool armed_ = true;
};

template <typename T, typename Fn>
Task<void> FutureCall(Fn fn, FutureSlot<OrAborted<T>> slot) {
  if constexpr (std::is_void_v<T>) {
    co_await Call(fn);
    slot.Set(Status::OK());
  } else {
    slot.Set(co_await Call(fn));
  }
}

}  // namespace detail

// Inside a task on an executor: runs `fn` on `shard` (in `queue` there) and
// yields its result. The target queue must exist on that shard.
template <typename Fn>
detail::SubmitAwaitable<detail::CallResult<Fn>> submit_to(uint32_t shard, Fn fn,
                                                          QueueId queue = kDefaultQueue) {
  using T = detail::CallResult<Fn>;
  auto reply = std::make_unique<detail::ReplyBlock<T>>();
  detail::ReplyBlock<T>* raw = reply.get();
  Task<void> call =
      detail::RemoteCall<T, Fn>(std::move(fn), std::move(reply), Executor::Current()->shard());
  Message request{&detail::RunCall, &detail::DropCall, call.Release().address(), queue};
  return detail::SubmitAwaitable<T>(shard, request, raw);
}

}  // namespace dmalog::sched

// Task<T>: a lazy, move-only coroutine that produces a T (cppcoro's model).
//
// A Task does nothing until it is awaited (or handed to an executor by
// Executor::Spawn). Awaiting it starts it at once. If it completes without
// suspending, control returns to the awaiter by a plain return, so a loop
// of co_awaits on tasks that finish synchronously never grows the stack,
// even where the compiler does not turn symmetric transfer into a tail call
// (GCC with AddressSanitizer). If it suspends, its completion resumes the
// awaiter by symmetric transfer, without bouncing through the scheduler.
// Tasks must not throw: an escaping exception terminates the process, since
// no exception may cross the dmalog API. Lambdas that are coroutines must not
// capture; pass what they need as parameters.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <optional>
#include <utility>

namespace dmalog {

template <typename T = void>
class Task;

namespace detail {

// Coroutine frames come from a per-thread cache of freed frames (size
// classes of 64 bytes up to 2 KiB, at most 64 KiB per class;
// scheduler/frame_cache.cc; off under ASan and TSan), so a request
// that runs a few tasks costs no malloc once the cache is warm: the engine's
// hot path allocates nothing after open. Larger frames use operator new.
void* AllocateFrame(std::size_t bytes);
void FreeFrame(void* frame, std::size_t bytes) noexcept;

struct TaskPromiseBase {
  static void* operator new(std::size_t bytes) { return AllocateFrame(bytes); }
  static void operator delete(void* frame, std::size_t bytes) noexcept { FreeFrame(frame, bytes); }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      TaskPromiseBase& promise = h.promise();
      if (promise.starting_) {
        // Finished inside the awaiter's resume() call: return to it.
        promise.finished_while_starting_ = true;
        return std::noop_coroutine();
      }
      std::coroutine_handle<> continuation = promise.continuation_;
      return continuation ? continuation : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };

  std::suspend_always initial_suspend() noexcept { return {}; }
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { std::terminate(); }
  void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }

  std::coroutine_handle<> continuation_;
  bool starting_ = false;                 // Inside the awaiter's resume() call.
  bool finished_while_starting_ = false;  // Completed without suspending.
};

template <typename T>
struct TaskPromise final : TaskPromiseBase {
  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    assert(value_.has_value() && "task finished without a value");
    return std::move(*value_);
  }
  std::optional<T> value_;
};

template <>
struct TaskPromise<void> final : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() noexcept {}
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  explicit Task(Handle h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Destroy(); }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  bool done() const noexcept { return handle_ && handle_.done(); }

  struct [[nodiscard]] Awaiter {
    Handle handle;
    bool await_ready() const noexcept { return !handle || handle.done(); }
    // Runs the task until it first suspends or finishes; suspends the
    // awaiter only if the task is still running.
    bool await_suspend(std::coroutine_handle<> awaiter) noexcept {
      auto& promise = handle.promise();
      promise.set_continuation(awaiter);
      promise.starting_ = true;
      handle.resume();
      promise.starting_ = false;
      return !promise.finished_while_starting_;
    }
    T await_resume() { return handle.promise().take(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

  // For executors: the frame, which stays owned by this Task.
  Handle handle() const noexcept { return handle_; }
  // For executors: gives up ownership of the frame.
  Handle Release() noexcept { return std::exchange(handle_, {}); }

 private:
  void Destroy() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace dmalog

// io::Reactor: what io/ needs from the executor that runs the current thread.
//
// The scheduler implements it; io/ awaitables (DmaFile operations, buffer
// pool waits) call it from await_suspend. Reactor::Current() is null outside
// an executor thread, where io awaitables must not be used.
#pragma once

#include <coroutine>
#include <cstdint>

#include "io/io_request.h"

namespace dmalog::io {

class BufferPool;

class Reactor {
 public:
  virtual ~Reactor() = default;

  // Takes `req` for submission on behalf of the running task. The executor
  // sets req->io_class and req->waiter, applies its per-class limits, hands
  // the request to the backend when allowed, and resumes `waiter` in its task
  // queue after the request completes.
  virtual void Enqueue(IoRequest* req, std::coroutine_handle<> waiter) = 0;

  // Identifies the task queue of the running task; pass it back to Schedule.
  virtual uint32_t current_queue() const noexcept = 0;

  // Makes `handle` runnable again in `queue`. Executor thread only.
  virtual void Schedule(std::coroutine_handle<> handle, uint32_t queue) = 0;

  // This executor's buffer pool (registered with its backend).
  virtual BufferPool& buffer_pool() noexcept = 0;

  static Reactor* Current() noexcept;
  static void SetCurrent(Reactor* reactor) noexcept;
};

// Awaitable for one IoRequest. co_await yields the request's final Status.
// The request lives inside the awaitable, so the awaitable must stay in the
// awaiting coroutine's frame (it always does with `co_await Expr()`).
class [[nodiscard]] IoAwaitable {
 public:
  explicit IoAwaitable(const IoRequest& req) : req_(req) {}
  IoAwaitable(const IoAwaitable&) = delete;
  IoAwaitable& operator=(const IoAwaitable&) = delete;
  IoAwaitable(IoAwaitable&& other) noexcept : req_(other.req_) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) {
    Reactor* reactor = Reactor::Current();
    assert(reactor != nullptr && "io awaited outside an executor thread");
    reactor->Enqueue(&req_, waiter);
  }
  Status await_resume() noexcept { return std::move(req_.status); }
  // Bytes moved; valid after resumption.
  uint64_t done_bytes() const noexcept { return req_.done_bytes; }

 private:
  IoRequest req_;
};

}  // namespace dmalog::io

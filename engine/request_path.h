// The message path from API threads to shards (engine/requests.h): requests
// posted to a shard's inbox, served without a coroutine when possible.
//
//   Blocking calls keep the request on the caller's stack and wait on an
//   atomic: no allocation, one wake-up each way.
//   Asynchronous calls take a request that carries the callback from a
//   pool (request_pool.h).
//   A blocking put with sync = false copies key and value into a pooled
//   request and returns once it is queued: the shard's inbox is FIFO, so a
//   later call from the same thread (a Get) is served after it.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>

#include "dmalog/engine.h"
#include "engine/request_pool.h"
#include "engine/requests.h"
#include "scheduler/executor_group.h"
#include "scheduler/wake_word.h"

namespace dmalog::engine {

// How blocking callers wait: a caller that is the only one in flight spins
// for up to `spin_ns` before it sleeps, so its answer costs no thread
// wake-up (tens of microseconds on a VM). With more callers in flight they
// all sleep: spinning threads would take the CPUs the executors need.
class CallerWait {
 public:
  explicit CallerWait(uint64_t spin_ns) : spin_ns_(spin_ns) {}
  // Waits until `done` is signalled.
  void Await(sched::WakeWord& done);

 private:
  const uint64_t spin_ns_;
  std::atomic<uint32_t> waiting_{0};  // Blocking calls waiting now.
};

// Posts `request` to `shard_index` and waits (through `wait`, which outlives
// the call) until it completes.
Status PostWriteAndWait(sched::ExecutorGroup& group, uint32_t shard_index, WriteRequest& request,
                        CallerWait& wait);
Result<std::string> PostGetAndWait(sched::ExecutorGroup& group, uint32_t shard_index,
                                   GetRequest& request, CallerWait& wait);

// Errors of writes that failed after their caller returned (sync = false):
// the first is kept for the engine's life and returned by every later
// Sync() and by Close(), whichever thread calls them. (Consumed by the first
// report, it let another thread's Sync() return OK after the loss.) The
// shard that lost the write refuses later writes (LogWriter::RefuseAppends).
class DeferredErrors {
 public:
  void Record(const Status& status);
  // The first recorded error, or OK.
  Status First() const;

 private:
  std::atomic<bool> any_{false};  // Lets Take skip the lock: it runs on every write.
  mutable std::mutex mu_;
  Status first_;  // Guarded by mu_.
};

// ---- Requests that outlive the call that made them (pooled).
struct RequestPools;
// Requests that outlive the call that posted them hold a copy of their key
// and value (`bytes`: key, then value), so that the caller may free its
// buffers as soon as the call returns.
struct OwnedWrite : WriteRequest {  // sync = false.
  std::string bytes;
  DeferredErrors* errors = nullptr;
  RequestPools* pools = nullptr;
};
struct AsyncWrite : WriteRequest {
  std::string bytes;
  Engine::StatusCallback done;
  RequestPools* pools = nullptr;
};
struct AsyncGet : GetRequest {
  std::string bytes;  // The key.
  Engine::GetCallback done;
  RequestPools* pools = nullptr;
};
// Requests in flight beyond which each kind comes from the heap: more than
// the in-flight benchmark's 2 x 256, and a few flushes' worth of sync=false
// puts waiting in a shard's inbox.
inline constexpr uint32_t kPooledRequestsMax = 1024;
// A pooled request keeps its copy buffer for the next one, up to
// this size: a burst of large values must not stay pinned in the pool
// (1024 requests x a 1 MiB value would be 1 GiB).
inline constexpr size_t kPooledCopyBytesMax = 4096;
struct RequestPools {
  RequestPool<OwnedWrite, kPooledRequestsMax> owned_writes;
  RequestPool<AsyncWrite, kPooledRequestsMax> async_writes;
  RequestPool<AsyncGet, kPooledRequestsMax> async_gets;
};

// Copies key and value, posts, and returns once queued (sync = false).
// `errors` and `pools` must outlive the engine's executors.
Status PostWriteNoWait(sched::ExecutorGroup& group, uint32_t shard_index, Shard* shard,
                       format::RecordType type, std::string_view key, std::string_view value,
                       DeferredErrors* errors, RequestPools* pools);

// Asynchronous forms: `done` runs on the shard's executor thread. Key and
// value (a batch's payload) are copied before they return. `pools` must
// outlive the engine's executors.
void PostWriteAsync(sched::ExecutorGroup& group, uint32_t shard_index, const WriteRequest& proto,
                    Engine::StatusCallback done, RequestPools* pools);
void PostGetAsync(sched::ExecutorGroup& group, uint32_t shard_index, Shard* shard,
                  std::string_view key, Engine::GetCallback done, RequestPools* pools);

// Awaits a request served by calling Shard::Submit at once, not through a
// message: for a coroutine form on the shard's own executor while no message
// this thread sent or posted to itself is still queued
// (Executor::has_self_messages), so that the call keeps the thread's order
// and skips the hop. The request lives in this awaitable, in the awaiting
// frame; its key and value are borrowed until the await returns.
template <typename Request>
class [[nodiscard]] DirectCall {
 public:
  explicit DirectCall(const Request& request) {
    static_cast<Request&>(request_) = request;
    request_.owner = this;
    request_.complete = &Complete;
  }
  DirectCall(const DirectCall&) = delete;
  DirectCall& operator=(const DirectCall&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> waiter) {
    executor_ = sched::Executor::Current();
    assert(executor_ != nullptr && "DirectCall outside the shard's executor");
    waiter_ = waiter;
    queue_ = executor_->current_queue();
    submitting_ = true;
    if constexpr (std::is_base_of_v<WriteRequest, Request>) request_.shard->WriteComing();
    request_.shard->Submit(&request_);
    submitting_ = false;
    return !done_;  // Served at once: go on without suspending.
  }
  auto await_resume() {
    if constexpr (std::is_base_of_v<WriteRequest, Request>) {
      return std::move(request_.status);
    } else {
      return std::move(request_.result);
    }
  }

 private:
  struct Owned : Request {
    DirectCall* owner = nullptr;
  };
  static void Complete(Request* request) {
    DirectCall* self = static_cast<Owned*>(request)->owner;
    self->done_ = true;
    // Same thread as await_suspend: inline completion needs no resumption.
    if (!self->submitting_) self->executor_->Schedule(self->waiter_, self->queue_);
  }

  Owned request_;
  sched::Executor* executor_ = nullptr;
  std::coroutine_handle<> waiter_;
  sched::QueueId queue_ = sched::kDefaultQueue;
  bool submitting_ = false;
  bool done_ = false;
};

}  // namespace dmalog::engine

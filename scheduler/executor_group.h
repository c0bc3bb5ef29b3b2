// ExecutorGroup: starts N executors (one thread each, optionally pinned to
// the i-th CPU of a CPU set), owns the mesh of single-producer
// single-consumer rings between every ordered pair of them, and stops them.
//
// Thread-safety: Start, Stop and the destructor from a thread that is not
// one of the group's executors; submit_to, CreateQueue and Stats from any
// thread that is not an executor (they block on a future; an executor must
// use sched::submit_to instead, see submit.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "dmalog/status.h"
#include "scheduler/executor.h"
#include "scheduler/message.h"
#include "scheduler/spsc_queue.h"
#include "scheduler/submit.h"

namespace dmalog::sched {

inline constexpr uint32_t kShardsMax = 64;
// Messages in flight from one shard to another before back-pressure.
inline constexpr uint32_t kRingCapacity = 256;
using MessageRing = SpscQueue<Message, kRingCapacity>;

struct GroupOptions {
  uint32_t shards = 1;
  // Placement: executor i is pinned to cpus[i]; empty leaves executors as
  // ExecutorOptions::pin_to_cpu says (unpinned by default). When not empty
  // it must name at least `shards` CPUs.
  std::vector<int> cpus;
  ExecutorOptions executor;
};

class ExecutorGroup {
 public:
  // Starts every executor and waits until each has opened its backend; on
  // any failure stops the others and returns the first error.
  static Result<std::unique_ptr<ExecutorGroup>> Start(const GroupOptions& options);
  ~ExecutorGroup();  // Stop().
  ExecutorGroup(const ExecutorGroup&) = delete;
  ExecutorGroup& operator=(const ExecutorGroup&) = delete;

  // Stops every executor: loops end, queued I/O is cancelled, in-flight I/O
  // is waited for, suspended root tasks are destroyed, undelivered messages
  // dropped (their futures get Aborted). Idempotent.
  void Stop();

  uint32_t shards() const noexcept { return shard_count_; }

  // Runs `fn` (returning T or Task<T>) on `shard` in `queue`; the future
  // yields T, or Aborted if the group stops first (see detail::OrAborted:
  // Result<T>, or Status for void/Status). Blocks while the shard's inbox
  // is full.
  template <typename Fn>
  std::future<detail::OrAborted<detail::CallResult<Fn>>> submit_to(uint32_t shard, Fn fn,
                                                                   QueueId queue = kDefaultQueue) {
    using T = detail::CallResult<Fn>;
    using R = detail::OrAborted<T>;
    detail::FutureSlot<R> slot;
    std::future<R> future = slot.get_future();
    assert(shard < shard_count_);
    Task<void> call = detail::FutureCall<T, Fn>(std::move(fn), std::move(slot));
    const Message msg{&detail::RunCall, &detail::DropCall, call.Release().address(), queue};
    if (!PushFromOutside(shard, msg)) msg.drop(msg.arg);  // Fulfils with Aborted.
    return future;
  }

  // Posts a raw message to `shard`'s inbox (any thread): the
  // allocation-free path. Blocks while the inbox is full, except on an
  // executor thread (scheduler/message.h says why). False when the
  // group has stopped; the caller still owns msg.arg then. `deferrable`:
  // the message need not wake the executor while it defers wake-ups
  // (Executor::DeferWakes), as a durable write during a flush.
  [[nodiscard]] bool Post(uint32_t shard, const Message& msg, bool deferrable = false) {
    assert(shard < shard_count_);
    return PushFromOutside(shard, msg, deferrable);
  }

  // Runs `task` detached on `shard` in `queue` (any thread; never waits on
  // an executor thread, as Post). False when the group has stopped: the
  // task was destroyed without running.
  [[nodiscard]] bool PostTask(uint32_t shard, Task<void> task, QueueId queue) {
    const Message msg{&detail::RunCall, &detail::DropCall, task.Release().address(), queue};
    if (Post(shard, msg)) return true;
    msg.drop(msg.arg);
    return false;
  }

  // Adds a task queue on `shard`.
  Result<QueueId> CreateQueue(uint32_t shard, const QueueOptions& options);
  // A snapshot of `shard`'s stats, taken on its thread.
  Result<ExecutorStats> Stats(uint32_t shard);

  // ---- For executors.
  MessageRing& Ring(uint32_t from, uint32_t to) noexcept {
    return rings_[from * shard_count_ + to];
  }
  Executor& executor(uint32_t shard) noexcept { return *executors_[shard]; }
  // Each executor calls this once its loop is over, and waits for all.
  void LoopDoneAndWait();

 private:
  explicit ExecutorGroup(uint32_t shard_count);
  [[nodiscard]] bool PushFromOutside(uint32_t shard, const Message& msg, bool deferrable = false);

  const uint32_t shard_count_;
  std::unique_ptr<MessageRing[]> rings_;
  std::vector<std::unique_ptr<Executor>> executors_;

  std::mutex stop_mu_;
  bool stopped_ = false;  // Guarded by stop_mu_.

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  uint32_t loops_done_ = 0;  // Guarded by done_mu_.
};

}  // namespace dmalog::sched

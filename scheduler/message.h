// Message: one cross-shard message, a fixed-size slot (two function pointers
// and an argument), so the lock-free rings never allocate.
//
// `run` executes on the target executor's thread, inside its loop (not inside
// a task), and takes ownership of `arg`. If the message can never run (the
// group stopped first), `drop` is called instead, on whichever thread tears
// the group down, and must release `arg` without touching any executor.
//
// MessageInbox is the bounded multi-producer inbox used by threads that are
// not executors (the embedding application's threads). It uses a mutex; a
// producer that finds it full waits until the executor drains it, unless it
// is itself an executor (a callback posting its next request): an executor
// that waited for an inbox only it, or an executor waiting on it, can drain
// would hang, so it queues past the bound instead.
#pragma once

#include <cassert>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

namespace dmalog::sched {

class Executor;

struct Message {
  // Ownership of `arg` passes to whichever of run/drop is called (exactly one).
  void (*run)(Executor& target, void* arg, uint64_t tag) = nullptr;
  void (*drop)(void* arg) = nullptr;
  void* arg = nullptr;
  uint64_t tag = 0;  // A plain value for `run` (e.g. the target queue).
};

class MessageInbox {
 public:
  static constexpr uint32_t kCapacity = 1024;

  // Blocks while the inbox is full, if `may_wait`; otherwise queues past
  // kCapacity. Returns false (and keeps `msg`, which the caller must drop)
  // when the inbox is closed. Calls `wake()` after queueing, still under the
  // lock, so that no wake-up can follow Close().
  template <typename WakeFn>
  [[nodiscard]] bool Push(const Message& msg, bool may_wait, WakeFn wake) {
    assert(msg.run != nullptr && msg.drop != nullptr);
    std::unique_lock<std::mutex> lock(mu_);
    if (may_wait) {
      not_full_.wait(lock, [this] { return closed_ || messages_.size() < kCapacity; });
    }
    if (closed_) return false;
    messages_.push_back(msg);
    wake();
    return true;
  }
  // Consumer: moves up to `max_count` messages to `out` (appends). Returns
  // how many it moved.
  uint32_t PopBatch(std::deque<Message>& out, uint32_t max_count);
  bool empty() const;
  // Refuses further pushes and returns what was queued (to be dropped).
  std::deque<Message> Close();

 private:
  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::deque<Message> messages_;  // Guarded by mu_.
  bool closed_ = false;           // Guarded by mu_.
};

}  // namespace dmalog::sched

// Executor: cross-shard and outside messages (see message.h, submit.h), and
// waiting for them: the idle poll, sleeping, and waking a sleeping executor.
#include <algorithm>
#include <cassert>
#include <optional>

#include "scheduler/executor.h"
#include "scheduler/executor_group.h"

namespace dmalog::sched {

bool Executor::PushFromOutside(const Message& msg, bool deferrable) {
  if (Current() == this && !shutting_down_) {
    // FIFO with this thread's other self-messages, which is all the order a
    // post promises; it costs no lock, and the executor is awake.
    self_messages_.push_back(msg);
    return true;
  }
  // An executor (of this group or another) never waits for room: see
  // MessageInbox.
  const bool may_wait = Current() == nullptr;
  return inbox_.Push(msg, may_wait, [this, deferrable] { WakeIfSleeping(deferrable); });
}

bool Executor::TrySend(uint32_t target, const Message& msg) {
  assert(Current() == this);
  assert(target < group_->shards());
  assert(msg.run != nullptr && msg.drop != nullptr);
  if (target == shard_) {
    self_messages_.push_back(msg);
    return true;
  }
  if (pending_head_[target] != nullptr) return false;  // Keep FIFO order.
  if (!group_->Ring(shard_, target).TryPush(msg)) return false;
  group_->executor(target).WakeIfSleeping();
  return true;
}

void Executor::Send(PendingSend* send) {
  assert(send != nullptr && !send->sent);
  if (TrySend(send->target, send->msg)) {
    send->sent = true;
    if (send->waiter) Schedule(send->waiter, send->queue);
    return;
  }
  send->next = nullptr;
  if (pending_tail_[send->target] != nullptr) {
    pending_tail_[send->target]->next = send;
  } else {
    pending_head_[send->target] = send;
  }
  pending_tail_[send->target] = send;
  ++pending_count_;
}

void Executor::FlushPendingSends() {
  if (pending_count_ == 0) return;
  for (uint32_t target = 0; target < pending_head_.size(); ++target) {
    MessageRing& ring = group_->Ring(shard_, target);
    bool pushed = false;
    for (uint32_t i = 0; i < MessageRing::capacity(); ++i) {
      PendingSend* send = pending_head_[target];
      if (send == nullptr || !ring.TryPush(send->msg)) break;
      pending_head_[target] = send->next;
      if (pending_head_[target] == nullptr) pending_tail_[target] = nullptr;
      --pending_count_;
      send->sent = true;
      pushed = true;
      if (send->waiter) Schedule(send->waiter, send->queue);
    }
    if (pushed) group_->executor(target).WakeIfSleeping();
  }
}

void Executor::RunMessages() {
  for (uint32_t source = 0; source < group_->shards(); ++source) {
    if (source == shard_) continue;
    MessageRing& ring = group_->Ring(source, shard_);
    for (uint32_t i = 0; i < kMessagesPerSourceMax; ++i) {
      std::optional<Message> msg = ring.TryPop();
      if (!msg) break;
      ++messages_run_;
      msg->run(*this, msg->arg, msg->tag);
    }
  }
  const size_t self_count = std::min<size_t>(self_messages_.size(), kMessagesPerSourceMax);
  for (size_t i = 0; i < self_count; ++i) {
    const Message msg = self_messages_.front();
    self_messages_.pop_front();
    ++messages_run_;
    msg.run(*this, msg.arg, msg.tag);
  }
  inbox_.PopBatch(inbox_batch_, kMessagesPerSourceMax);
  while (!inbox_batch_.empty()) {
    const Message msg = inbox_batch_.front();
    inbox_batch_.pop_front();
    ++messages_run_;
    msg.run(*this, msg.arg, msg.tag);
  }
}

bool Executor::HasIncoming() const {
  if (stop_requested_.load(std::memory_order_relaxed)) return true;
  if (!self_messages_.empty()) return true;
  for (uint32_t source = 0; source < group_->shards(); ++source) {
    if (source != shard_ && !group_->Ring(source, shard_).empty()) return true;
  }
  return !inbox_.empty();
}

// ---- Waiting for work.

void Executor::WakeIfSleeping(bool deferrable) noexcept {
  // Pairs with the read-modify-write in Sleep(): RMWs of wake_sync_ are
  // totally ordered, so either we see sleeping_, or the executor sees what
  // we published before calling this. (An RMW rather than a fence: TSan
  // understands it.)
  wake_sync_.fetch_add(1, std::memory_order_acq_rel);
  if (!sleeping_.load(std::memory_order_relaxed)) return;
  if (deferrable && defer_wakes_.load(std::memory_order_relaxed)) return;
  backend_->Wake();
}

bool Executor::IdlePoll() {
  const uint64_t poll_ns = static_cast<uint64_t>(options_.idle_poll.count());
  // With I/O in flight, sleep: completing it may need a kernel worker (an
  // RWF_DSYNC write does), and polling would keep it off the CPU.
  if (poll_ns == 0 || pending_count_ > 0 || dispatcher_->in_flight() > 0) return false;
  // Bounded by the poll window (each round takes at least a clock read).
  uint32_t polls = 0;
  for (uint64_t now_ns = NowNs(); now_ns < last_work_ns_ + poll_ns; now_ns = NowNs()) {
    if (HasIncoming() || (!timers_.empty() && timers_.next_deadline_ns() <= now_ns)) return true;
    SpinPause(++polls);
  }
  return false;
}

void Executor::Sleep() {
  int64_t timeout_ns = -1;
  if (!timers_.empty()) {
    const uint64_t now_ns = NowNs();
    const uint64_t next_ns = timers_.next_deadline_ns();
    timeout_ns = next_ns > now_ns ? static_cast<int64_t>(next_ns - now_ns) : 0;
  }
  if (pending_count_ > 0 && (timeout_ns < 0 || timeout_ns > kSendRetryNs)) {
    timeout_ns = kSendRetryNs;
  }
  // Set the flag, then re-check the inboxes: a sender either sees the flag
  // (and wakes the ring) or published its message before our check.
  sleeping_.store(true, std::memory_order_relaxed);
  wake_sync_.fetch_add(1, std::memory_order_acq_rel);
  if (!HasIncoming() && timeout_ns != 0) {
    ++sleeps_;
    ReapIo(timeout_ns);
  }
  sleeping_.store(false, std::memory_order_relaxed);
}

}  // namespace dmalog::sched

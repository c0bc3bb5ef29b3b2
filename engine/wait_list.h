// WaitList: coroutines of one executor waiting for a condition (a flush to
// finish, buffer room, a segment to be ready). Waiters re-check their
// condition after waking: Notify wakes, it does not promise.
//
// Executor-thread only. A waiter's node lives in its awaiter, in the waiting
// coroutine's frame, so waiting allocates nothing.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstdint>

#include "io/reactor.h"

namespace dmalog::engine {

class WaitList {
 public:
  struct Node {
    std::coroutine_handle<> handle;
    uint32_t queue = 0;
    Node* next = nullptr;
  };

  class [[nodiscard]] Awaiter {
   public:
    explicit Awaiter(WaitList* list) : list_(list) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle) {
      io::Reactor* reactor = io::Reactor::Current();
      assert(reactor != nullptr && "WaitList used outside an executor");
      node_.handle = handle;
      node_.queue = reactor->current_queue();
      list_->Push(&node_);
    }
    void await_resume() const noexcept {}

   private:
    WaitList* list_;
    Node node_;
  };

  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { assert(head_ == nullptr && "coroutines still wait on a destroyed WaitList"); }

  Awaiter Wait() noexcept { return Awaiter(this); }
  bool empty() const noexcept { return head_ == nullptr; }

  // Makes every waiter runnable in its own queue.
  void NotifyAll() {
    Node* node = head_;
    head_ = tail_ = nullptr;
    while (node != nullptr) {
      Node* next = node->next;
      io::Reactor::Current()->Schedule(node->handle, node->queue);
      node = next;
    }
  }

 private:
  void Push(Node* node) noexcept {
    node->next = nullptr;
    if (tail_) {
      tail_->next = node;
    } else {
      head_ = node;
    }
    tail_ = node;
  }
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

}  // namespace dmalog::engine

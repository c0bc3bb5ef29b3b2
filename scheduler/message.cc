#include "scheduler/message.h"

#include <cassert>

namespace dmalog::sched {

uint32_t MessageInbox::PopBatch(std::deque<Message>& out, uint32_t max_count) {
  uint32_t moved = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (moved < max_count && !messages_.empty()) {
      out.push_back(messages_.front());
      messages_.pop_front();
      ++moved;
    }
  }
  if (moved > 0) not_full_.notify_all();
  return moved;
}

bool MessageInbox::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_.empty();
}

std::deque<Message> MessageInbox::Close() {
  std::deque<Message> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    left.swap(messages_);
  }
  not_full_.notify_all();
  return left;
}

}  // namespace dmalog::sched

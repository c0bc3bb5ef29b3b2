// IoRequest: one I/O operation handed to an io::Backend.
//
// The caller owns the request (usually it lives in the frame of the coroutine
// that awaits it) and must keep it alive, unmoved, from Backend::Submit until
// Backend::PopCompleted returns it. io/ never allocates or frees a request.
//
// A request is complete when io/ has finished every retry: EINTR and EAGAIN
// are resubmitted, a short transfer advances buf/offset and is resubmitted,
// and a transfer larger than max_transfer_bytes is split. The final outcome
// is `status`; only io/ translates errno or cqe->res into it.
#pragma once

#include <coroutine>
#include <cstdint>

#include "dmalog/status.h"

namespace dmalog::io {

enum class IoOp : uint8_t {
  kRead,
  kWrite,
  kFdatasync,
  kFsync,           // Full fsync (used for directories).
  kWriteFdatasync,  // A write linked to an fdatasync in one submission.
  kFallocate,
  kNop,
};

const char* IoOpName(IoOp op) noexcept;

struct IoRequest {
  // ---- Set by the caller before Submit.
  IoOp op = IoOp::kNop;
  int fd = -1;
  // Not owned. For O_DIRECT files it is aligned to the file's memory alignment
  // and must outlive the request.
  uint8_t* buf = nullptr;
  uint64_t length_bytes = 0;  // Also the fallocate length.
  uint64_t offset_bytes = 0;
  int32_t buf_index = -1;  // Registered buffer index for fixed I/O, or -1.
  int32_t fallocate_mode = 0;
  // RWF_* flags for a write (e.g. RWF_DSYNC: the write is durable when it
  // completes, with no separate fdatasync). 0 for none.
  int32_t rw_flags = 0;
  // Hand the request to the kernel as soon as it is submitted (Backend::
  // SubmitNow) instead of with the executor's next batch of submissions.
  bool submit_now = false;
  // Largest transfer one kernel request may carry; 0 means no limit.
  uint32_t max_transfer_bytes = 0;
  // File name used in error messages. Not owned; must outlive the request.
  const char* path = "";

  // ---- Set by the submitter (the executor); io/ does not interpret them.
  uint32_t io_class = 0;
  std::coroutine_handle<> waiter;
  uint64_t submit_ns = 0;

  // ---- Maintained by io/.
  uint64_t done_bytes = 0;    // Bytes transferred so far.
  uint32_t resubmits = 0;     // EINTR/EAGAIN/short-transfer resubmissions.
  uint8_t cqes_pending = 0;   // Kernel completions still owed (uring).
  bool sync_done = false;     // kWriteFdatasync: the linked fdatasync succeeded.
  Status status;              // Final outcome, valid once completed.
  IoRequest* next = nullptr;  // Intrusive link for whichever queue holds it.
};

// Intrusive FIFO of requests. Holds no ownership.
class IoRequestQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  uint32_t size() const noexcept { return size_; }
  void Push(IoRequest* req) noexcept {
    req->next = nullptr;
    if (tail_) {
      tail_->next = req;
    } else {
      head_ = req;
    }
    tail_ = req;
    ++size_;
  }
  IoRequest* Pop() noexcept {
    IoRequest* req = head_;
    if (!req) return nullptr;
    head_ = req->next;
    if (!head_) tail_ = nullptr;
    req->next = nullptr;
    --size_;
    return req;
  }
  IoRequest* front() const noexcept { return head_; }

 private:
  IoRequest* head_ = nullptr;
  IoRequest* tail_ = nullptr;
  uint32_t size_ = 0;
};

}  // namespace dmalog::io

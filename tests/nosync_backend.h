// io::Backend that skips the fdatasync of every group commit, for proving
// that a durability suite sees a missing fdatasync (the simulated power-loss
// suite and the flush-point replay both must fail with it): a
// kWriteFdatasync becomes a plain write whose sync "succeeded", and an
// RWF_DSYNC write loses the flag. Writes at offset 0 (segment headers) keep
// their sync, so the loss shows as lost records, not as a missing segment.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <span>
#include <string>
#include <unordered_set>

#include "io/backend.h"
#include "io/io_request.h"

namespace dmalog::testing {

class NoSyncBackend final : public io::Backend {
 public:
  // Takes ownership of `inner` (not null).
  explicit NoSyncBackend(std::unique_ptr<io::Backend> inner) : inner_(std::move(inner)) {}
  io::BackendKind kind() const noexcept override { return inner_->kind(); }
  std::string Describe() const override { return "nosync(" + inner_->Describe() + ")"; }
  uint32_t capacity() const noexcept override { return inner_->capacity(); }
  uint32_t in_flight() const noexcept override { return inner_->in_flight(); }
  void Submit(io::IoRequest* req) override {
    if (req->op == io::IoOp::kWriteFdatasync && req->offset_bytes > 0) {
      req->op = io::IoOp::kWrite;
      converted_.insert(req);
    }
    if (req->op == io::IoOp::kWrite && (req->rw_flags & RWF_DSYNC) != 0 && req->offset_bytes > 0) {
      req->rw_flags &= ~RWF_DSYNC;
      undsynced_.insert(req);
    }
    inner_->Submit(req);
  }
  Status Poll(int64_t timeout_ns) override { return inner_->Poll(timeout_ns); }
  void SubmitNow() override { inner_->SubmitNow(); }
  io::IoRequest* PopCompleted() override {
    io::IoRequest* req = inner_->PopCompleted();
    if (req != nullptr && converted_.erase(req) > 0) {
      req->op = io::IoOp::kWriteFdatasync;
      req->sync_done = req->status.ok();
    }
    if (req != nullptr && undsynced_.erase(req) > 0) req->rw_flags |= RWF_DSYNC;
    return req;
  }
  void Wake() override { inner_->Wake(); }
  Status RegisterBuffers(std::span<const iovec> buffers) override {
    return inner_->RegisterBuffers(buffers);
  }

 private:
  std::unique_ptr<io::Backend> inner_;
  std::unordered_set<io::IoRequest*> converted_;  // kWriteFdatasync sent as kWrite.
  std::unordered_set<io::IoRequest*> undsynced_;  // RWF_DSYNC writes sent without the flag.
};

}  // namespace dmalog::testing

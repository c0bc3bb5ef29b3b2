// UringBackend: the io::Backend on one io_uring, owned by one executor thread.
//
// The ring must be created on the thread that uses it: it asks for
// IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN, falls back to
// IORING_SETUP_COOP_TASKRUN, then to no flags, when the kernel answers EINVAL.
// Describe() names the flags that took.
//
// Every completion is mapped by the rules of io_errors.h (shared with
// SyncBackend). kWriteFdatasync is a write SQE linked (IOSQE_IO_LINK) to an
// fdatasync SQE in one submission; both CQEs are reaped before the request
// completes. A short write cancels the fdatasync (-ECANCELED): the remainder
// and a new linked fdatasync are resubmitted. A transfer larger than
// max_transfer_bytes is split; only its last chunk carries the fdatasync.
//
// Wake() writes an eventfd on which the backend keeps one IORING_OP_READ
// armed; that read's completions are internal and never reach PopCompleted.
//
// Limits: at most ring depth requests in flight (kWriteFdatasync takes two
// SQEs, the eventfd read one more; the CQ is sized for all of them). When the
// SQ is full, Submit submits what is queued and takes a fresh SQE.
//
// Thread-safety: Wake() from any thread; everything else from the creating
// thread. The owner must drain every request (in_flight() == 0) before
// destroying the backend, since the kernel writes into request buffers.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>

#include "io/backend.h"

namespace dmalog::io {

inline constexpr uint32_t kRingDepthDefault = 256;
inline constexpr uint32_t kRingDepthMax = 4096;
static_assert(kRingDepthDefault <= kRingDepthMax);

class UringBackend final : public Backend {
 public:
  // Sets up the ring. On failure the Status carries the errno of
  // io_uring_setup (EPERM, ENOSYS, EACCES, ENOMEM...) in sys_errno().
  static Result<std::unique_ptr<UringBackend>> Create(const BackendOptions& options);
  ~UringBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::kUring; }
  std::string Describe() const override;
  uint32_t capacity() const noexcept override;
  uint32_t in_flight() const noexcept override { return in_flight_; }
  void Submit(IoRequest* req) override;
  Status Poll(int64_t timeout_ns) override;
  IoRequest* PopCompleted() override;
  void Wake() override;
  void SubmitNow() override;
  Status RegisterBuffers(std::span<const iovec> buffers) override;

  // The IORING_SETUP_* flags the kernel accepted.
  uint32_t setup_flags() const noexcept { return setup_flags_; }

 private:
  UringBackend(uint32_t depth, uint32_t setup_flags, int event_fd);
  io_uring_sqe* GetSqe(uint32_t sqes_needed);
  void ArmEventRead();
  // Queues the next kernel operation(s) of `req`.
  void Prepare(IoRequest* req);
  bool PrepareTransfer(IoRequest* req);
  bool PrepareSync(IoRequest* req, uint64_t tag);
  void FailNoSqe(IoRequest* req);
  void HandleCqe(const io_uring_cqe& cqe);
  void AfterCqe(IoRequest* req, bool done);
  void Complete(IoRequest* req);
  Status Reap();

  io_uring ring_;
  const uint32_t depth_;
  const uint32_t setup_flags_;
  const int event_fd_;
  uint64_t event_value_ = 0;  // Target of the armed eventfd read.
  uint32_t in_flight_ = 0;
  uint32_t registered_buffers_ = 0;
  IoRequestQueue completed_;
};

}  // namespace dmalog::io

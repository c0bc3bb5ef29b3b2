#include "io/uring_backend.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "io/io_errors.h"

namespace dmalog::io {
namespace {

constexpr int64_t kNanosPerSecond = 1000 * 1000 * 1000;

// user_data = request pointer | tag. Requests are at least 8-byte aligned.
constexpr uint64_t kTagMask = 7;
constexpr uint64_t kTagMain = 0;        // The request's own operation (or chunk).
constexpr uint64_t kTagSync = 1;        // The fdatasync half of a kWriteFdatasync.
constexpr uint64_t kEventUserData = 2;  // The armed eventfd read (no request).
static_assert(alignof(IoRequest) > kTagMask);

// Attempts to free SQ space by submitting before giving up on a request.
constexpr uint32_t kSqeAttemptsMax = 4;

// Setup flag sets, most capable first; the next is tried on EINVAL.
constexpr uint32_t kSetupFlagTries[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};

uint64_t Encode(IoRequest* req, uint64_t tag) noexcept {
  return reinterpret_cast<uintptr_t>(req) | tag;
}

bool IsTransientEnterError(int ret) noexcept {
  return ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY;
}

std::string FlagNames(uint32_t flags) {
  std::string out;
  auto add = [&](uint32_t flag, const char* name) {
    if ((flags & flag) == 0) return;
    if (!out.empty()) out += "|";
    out += name;
  };
  add(IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER");
  add(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN");
  add(IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN");
  return out.empty() ? "none" : out;
}

}  // namespace

Result<std::unique_ptr<UringBackend>> UringBackend::Create(const BackendOptions& options) {
  if (options.ring_depth == 0 || options.ring_depth > kRingDepthMax) {
    return Status::InvalidArgument("io_uring: ring_depth must be in 1.." +
                                   std::to_string(kRingDepthMax));
  }
  // Blocking eventfd: io_uring answers a read on an O_NONBLOCK file with
  // EAGAIN instead of waiting for it.
  const int event_fd = eventfd(0, EFD_CLOEXEC);
  if (event_fd < 0) return SyscallErrorStatus("eventfd", "(io_uring wake-up)", errno);
  io_uring ring;
  int ret = -EINVAL;
  uint32_t flags = 0;
  for (uint32_t try_flags : kSetupFlagTries) {
    io_uring_params params{};
    params.flags = try_flags | IORING_SETUP_CQSIZE;
    // Each request owes at most two CQEs; the eventfd read one more.
    params.cq_entries = 2 * options.ring_depth + 2;
    ret = io_uring_queue_init_params(options.ring_depth, &ring, &params);
    flags = try_flags;
    if (ret != -EINVAL) break;
  }
  if (ret < 0) {
    close(event_fd);
    return Status::Unsupported("io_uring_setup: " + ErrnoDescription(-ret), -ret);
  }
  // The ring struct is plain data pointing at the kernel's mappings; moving
  // it before first use is safe.
  std::unique_ptr<UringBackend> backend(new UringBackend(options.ring_depth, flags, event_fd));
  backend->ring_ = ring;
  backend->ArmEventRead();
  return backend;
}

UringBackend::UringBackend(uint32_t depth, uint32_t setup_flags, int event_fd)
    : ring_{}, depth_(depth), setup_flags_(setup_flags), event_fd_(event_fd) {}

UringBackend::~UringBackend() {
  assert(in_flight_ == 0 && "UringBackend destroyed with requests in flight");
  io_uring_queue_exit(&ring_);
  close(event_fd_);
}

std::string UringBackend::Describe() const {
  return "io_uring depth=" + std::to_string(depth_) + " flags=" + FlagNames(setup_flags_) +
         " registered_buffers=" + std::to_string(registered_buffers_);
}

uint32_t UringBackend::capacity() const noexcept {
  assert(in_flight_ <= depth_);
  return depth_ - in_flight_;
}

void UringBackend::Submit(IoRequest* req) {
  assert(capacity() > 0);
  assert(req->buf_index < 0 || static_cast<uint32_t>(req->buf_index) < registered_buffers_);
  ResetProgress(req);
  in_flight_++;
  Prepare(req);
}

io_uring_sqe* UringBackend::GetSqe(uint32_t sqes_needed) {
  for (uint32_t attempt = 0; attempt < kSqeAttemptsMax; ++attempt) {
    if (io_uring_sq_space_left(&ring_) >= sqes_needed) return io_uring_get_sqe(&ring_);
    // SQ full: hand what is queued to the kernel. Errors surface in Poll.
    const int ret = io_uring_submit(&ring_);
    (void)ret;
  }
  return nullptr;
}

void UringBackend::ArmEventRead() {
  io_uring_sqe* sqe = GetSqe(1);
  assert(sqe != nullptr && "no SQE for the eventfd read");
  if (sqe == nullptr) return;
  io_uring_prep_read(sqe, event_fd_, &event_value_, sizeof(event_value_), 0);
  io_uring_sqe_set_data64(sqe, kEventUserData);
}

void UringBackend::Prepare(IoRequest* req) {
  bool prepared = true;
  switch (req->op) {
    case IoOp::kNop:
      Complete(req);
      return;
    case IoOp::kRead:
    case IoOp::kWrite:
      if (req->length_bytes == 0) {
        Complete(req);
        return;
      }
      prepared = PrepareTransfer(req);
      break;
    case IoOp::kWriteFdatasync:
      prepared =
          req->done_bytes < req->length_bytes ? PrepareTransfer(req) : PrepareSync(req, kTagSync);
      break;
    case IoOp::kFdatasync:
    case IoOp::kFsync:
    case IoOp::kFallocate:
      prepared = PrepareSync(req, kTagMain);
      break;
  }
  if (!prepared) FailNoSqe(req);
}

bool UringBackend::PrepareTransfer(IoRequest* req) {
  const uint64_t chunk_bytes = ChunkBytes(*req);
  assert(chunk_bytes > 0 && chunk_bytes <= kKernelTransferBytesMax);
  const bool link_sync = req->op == IoOp::kWriteFdatasync && ChunkIsLast(*req);
  io_uring_sqe* sqe = GetSqe(link_sync ? 2 : 1);
  if (sqe == nullptr) return false;
  const auto len = static_cast<unsigned>(chunk_bytes);
  const uint64_t offset = ChunkOffset(*req);
  if (req->op == IoOp::kRead) {
    if (req->buf_index >= 0) {
      io_uring_prep_read_fixed(sqe, req->fd, ChunkBuf(*req), len, offset, req->buf_index);
    } else {
      io_uring_prep_read(sqe, req->fd, ChunkBuf(*req), len, offset);
    }
  } else if (req->buf_index >= 0) {
    io_uring_prep_write_fixed(sqe, req->fd, ChunkBuf(*req), len, offset, req->buf_index);
  } else {
    io_uring_prep_write(sqe, req->fd, ChunkBuf(*req), len, offset);
  }
  if (req->op != IoOp::kRead) sqe->rw_flags = req->rw_flags;
  io_uring_sqe_set_data64(sqe, Encode(req, kTagMain));
  req->cqes_pending++;
  if (!link_sync) return true;
  sqe->flags |= IOSQE_IO_LINK;
  const bool linked = PrepareSync(req, kTagSync);
  assert(linked && "two SQEs were reserved");
  return linked;
}

bool UringBackend::PrepareSync(IoRequest* req, uint64_t tag) {
  io_uring_sqe* sqe = GetSqe(1);
  if (sqe == nullptr) return false;
  switch (req->op) {
    case IoOp::kFdatasync:
    case IoOp::kWriteFdatasync:
      io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
      break;
    case IoOp::kFsync:
      io_uring_prep_fsync(sqe, req->fd, 0);
      break;
    case IoOp::kFallocate:
      io_uring_prep_fallocate(sqe, req->fd, req->fallocate_mode, req->offset_bytes,
                              req->length_bytes);
      break;
    default:
      assert(false && "not a sync op");
      return false;
  }
  io_uring_sqe_set_data64(sqe, Encode(req, tag));
  req->cqes_pending++;
  return true;
}

void UringBackend::FailNoSqe(IoRequest* req) {
  req->status = Status::Busy(std::string(IoOpName(req->op)) + " " + req->path +
                             ": io_uring submission queue stayed full after " +
                             std::to_string(kSqeAttemptsMax) + " submits");
  if (req->cqes_pending == 0) Complete(req);
}

void UringBackend::HandleCqe(const io_uring_cqe& cqe) {
  const uint64_t data = io_uring_cqe_get_data64(&cqe);
  if (data == kEventUserData) {
    ArmEventRead();  // Internal: a Wake() (or a cancelled read); keep one armed.
    return;
  }
  auto* req = reinterpret_cast<IoRequest*>(data & ~kTagMask);
  const uint64_t tag = data & kTagMask;
  assert(req->cqes_pending > 0);
  req->cqes_pending--;
  const int64_t res = cqe.res;
  if (tag == kTagSync) {
    // -ECANCELED here means the linked write failed or was short: the write's
    // CQE (reaped first, links complete in order) already says what to do.
    const bool write_incomplete = !req->status.ok() || req->done_bytes < req->length_bytes;
    if (!(res == -ECANCELED && write_incomplete) && req->status.ok()) {
      ApplySyncResult(req, res);  // The state check in AfterCqe decides.
    }
    AfterCqe(req, false);
    return;
  }
  const bool done = IsTransfer(req->op)
                        ? ApplyTransferResult(req, ChunkBytes(*req), res) == IoStep::kDone
                        : ApplySyncResult(req, res) == IoStep::kDone;
  AfterCqe(req, done);
}

void UringBackend::AfterCqe(IoRequest* req, bool done) {
  if (req->cqes_pending > 0) return;  // The linked fdatasync is still owed.
  if (req->op == IoOp::kWriteFdatasync) {
    done = !req->status.ok() || (req->done_bytes == req->length_bytes && req->sync_done);
  }
  if (done) {
    Complete(req);
  } else {
    Prepare(req);
  }
}

void UringBackend::Complete(IoRequest* req) {
  assert(req->cqes_pending == 0);
  completed_.Push(req);
}

Status UringBackend::Reap() {
  // Bounded by the CQ size; anything left is reaped by the next Poll.
  const uint32_t cqes_max = ring_.cq.ring_entries;
  for (uint32_t i = 0; i < cqes_max; ++i) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_peek_cqe(&ring_, &cqe);
    if (ret == -EAGAIN) break;
    if (ret < 0) return Status::IOError("io_uring peek_cqe: " + ErrnoDescription(-ret), -ret);
    const io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&ring_, cqe);
    HandleCqe(copy);
  }
  return Status::OK();
}

Status UringBackend::Poll(int64_t timeout_ns) {
  if (!completed_.empty()) timeout_ns = 0;
  int ret = 0;
  if (timeout_ns == 0) {
    // Also runs deferred task work (DEFER_TASKRUN) so completions are posted.
    ret = io_uring_submit_and_get_events(&ring_);
  } else if (timeout_ns < 0) {
    ret = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{.tv_sec = timeout_ns / kNanosPerSecond,
                         .tv_nsec = timeout_ns % kNanosPerSecond};
    io_uring_cqe* cqe = nullptr;
    ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  if (ret < 0 && !IsTransientEnterError(ret)) {
    return Status::IOError("io_uring_enter: " + ErrnoDescription(-ret), -ret);
  }
  DMALOG_RETURN_IF_ERROR(Reap());
  if (io_uring_sq_ready(&ring_) > 0) {  // Resubmissions prepared while reaping.
    ret = io_uring_submit(&ring_);
    if (ret < 0 && !IsTransientEnterError(ret)) {
      return Status::IOError("io_uring_enter: " + ErrnoDescription(-ret), -ret);
    }
  }
  return Status::OK();
}

IoRequest* UringBackend::PopCompleted() {
  IoRequest* req = completed_.Pop();
  if (req != nullptr) {
    assert(in_flight_ > 0);
    in_flight_--;
  }
  return req;
}

void UringBackend::SubmitNow() {
  // Errors (other than transient ones) reappear at the next Poll, which
  // submits again and reports them there.
  const int ret = io_uring_submit(&ring_);
  static_cast<void>(ret);  // Ignored on purpose: see above.
}

void UringBackend::Wake() {
  const uint64_t one = 1;
  // Only fails if the counter would overflow, i.e. a wake-up is pending.
  const ssize_t ret = write(event_fd_, &one, sizeof(one));
  (void)ret;
}

Status UringBackend::RegisterBuffers(std::span<const iovec> buffers) {
  if (registered_buffers_ > 0) {
    const int ret = io_uring_unregister_buffers(&ring_);
    if (ret < 0)
      return Status::IOError("io_uring_unregister_buffers: " + ErrnoDescription(-ret), -ret);
    registered_buffers_ = 0;
  }
  const int ret =
      io_uring_register_buffers(&ring_, buffers.data(), static_cast<unsigned>(buffers.size()));
  if (ret < 0) {
    return Status::Unsupported("io_uring_register_buffers: " + ErrnoDescription(-ret) +
                                   "; fixed buffers are off (raise 'ulimit -l' if ENOMEM)",
                               -ret);
  }
  registered_buffers_ = static_cast<uint32_t>(buffers.size());
  return Status::OK();
}

}  // namespace dmalog::io

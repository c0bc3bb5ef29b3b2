#include "io/sync_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <ctime>
#include <system_error>

#include "io/io_errors.h"

namespace dmalog::io {
namespace {

constexpr int64_t kNanosPerSecond = 1000 * 1000 * 1000;

// Syscall result as the ring reports it: a byte count or -errno.
int64_t Result64(ssize_t ret) noexcept { return ret < 0 ? -static_cast<int64_t>(errno) : ret; }

int64_t TransferOnce(const IoRequest& req, uint64_t chunk_bytes) noexcept {
  const off_t offset = static_cast<off_t>(ChunkOffset(req));
  if (req.op == IoOp::kRead) return Result64(pread(req.fd, ChunkBuf(req), chunk_bytes, offset));
  if (req.rw_flags != 0) {
    iovec iov{ChunkBuf(req), chunk_bytes};
    return Result64(pwritev2(req.fd, &iov, 1, offset, req.rw_flags));
  }
  return Result64(pwrite(req.fd, ChunkBuf(req), chunk_bytes, offset));
}

int64_t SyncOnce(const IoRequest& req) noexcept {
  switch (req.op) {
    case IoOp::kFdatasync:
    case IoOp::kWriteFdatasync:
      return Result64(fdatasync(req.fd));
    case IoOp::kFsync:
      return Result64(fsync(req.fd));
    case IoOp::kFallocate:
      return Result64(fallocate(req.fd, req.fallocate_mode, static_cast<off_t>(req.offset_bytes),
                                static_cast<off_t>(req.length_bytes)));
    default:
      assert(false && "not a sync op");
      return -EINVAL;
  }
}

// Upper bound on the kernel calls one transfer may take: every full chunk,
// plus every resubmission the cap allows.
uint64_t TransferCallsMax(const IoRequest& req) noexcept {
  const uint64_t chunks =
      req.max_transfer_bytes ? req.length_bytes / req.max_transfer_bytes + 1 : 1;
  return chunks + kIoResubmitsMax + 1;
}

void ExecuteTransfer(IoRequest* req) {
  const uint64_t calls_max = TransferCallsMax(*req);
  for (uint64_t call = 0; call < calls_max; ++call) {
    const uint64_t chunk_bytes = ChunkBytes(*req);
    if (chunk_bytes == 0) return;  // A zero-length request moves nothing.
    if (ApplyTransferResult(req, chunk_bytes, TransferOnce(*req, chunk_bytes)) == IoStep::kDone) {
      return;
    }
  }
  assert(false && "transfer loop exceeded its bound");
}

void ExecuteSync(IoRequest* req) {
  for (uint32_t call = 0; call <= kIoResubmitsMax + 1; ++call) {
    if (ApplySyncResult(req, SyncOnce(*req)) == IoStep::kDone) return;
  }
  assert(false && "sync loop exceeded its bound");
}

}  // namespace

void ExecuteBlocking(IoRequest* req) {
  switch (req->op) {
    case IoOp::kNop:
      return;
    case IoOp::kRead:
    case IoOp::kWrite:
      ExecuteTransfer(req);
      return;
    case IoOp::kWriteFdatasync:
      ExecuteTransfer(req);
      if (req->status.ok() && req->done_bytes == req->length_bytes) ExecuteSync(req);
      return;
    case IoOp::kFdatasync:
    case IoOp::kFsync:
    case IoOp::kFallocate:
      ExecuteSync(req);
      return;
  }
}

Result<std::unique_ptr<SyncBackend>> SyncBackend::Create(const BackendOptions& options) {
  if (options.sync_workers == 0 || options.sync_workers > kSyncWorkersMax) {
    return Status::InvalidArgument("SyncBackend: sync_workers must be in 1.." +
                                   std::to_string(kSyncWorkersMax));
  }
  if (options.ring_depth == 0 || options.ring_depth > kSyncQueueDepthMax) {
    return Status::InvalidArgument("SyncBackend: ring_depth must be in 1.." +
                                   std::to_string(kSyncQueueDepthMax));
  }
  const int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd < 0) return SyscallErrorStatus("eventfd", "(SyncBackend)", errno);
  std::unique_ptr<SyncBackend> backend(new SyncBackend(event_fd, options.ring_depth));
  try {
    for (uint32_t i = 0; i < options.sync_workers; ++i) {
      backend->workers_.emplace_back([b = backend.get()] { b->WorkerLoop(); });
      backend->workers_count_++;
    }
  } catch (const std::system_error& e) {
    return SyscallErrorStatus("pthread_create", "(SyncBackend worker)", e.code().value());
  }
  return backend;
}

SyncBackend::SyncBackend(int event_fd, uint32_t queue_depth)
    : event_fd_(event_fd), queue_depth_(queue_depth) {}

SyncBackend::~SyncBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  close(event_fd_);
}

std::string SyncBackend::Describe() const {
  return "sync fallback (thread pool) workers=" + std::to_string(workers_count_) +
         " queue_depth=" + std::to_string(queue_depth_);
}

void SyncBackend::Submit(IoRequest* req) {
  assert(capacity() > 0);
  assert(req->buf_index < 0 || static_cast<uint32_t>(req->buf_index) < registered_buffers_);
  ResetProgress(req);
  in_flight_++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.Push(req);
  }
  work_cv_.notify_one();
}

void SyncBackend::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {  // Bounded by the owner: runs until stopping_ with nothing pending.
    work_cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    IoRequest* req = pending_.Pop();
    if (req == nullptr) return;  // stopping_ and drained.
    lock.unlock();
    ExecuteBlocking(req);
    lock.lock();
    completed_.Push(req);
    Signal();
  }
}

Status SyncBackend::Poll(int64_t timeout_ns) {
  bool have_completions = !ready_.empty();
  if (!have_completions) {
    std::lock_guard<std::mutex> lock(mu_);
    have_completions = !completed_.empty();
  }
  if (!have_completions && timeout_ns != 0) {
    pollfd pfd{.fd = event_fd_, .events = POLLIN, .revents = 0};
    timespec ts{.tv_sec = timeout_ns / kNanosPerSecond, .tv_nsec = timeout_ns % kNanosPerSecond};
    const int ret = ppoll(&pfd, 1, timeout_ns < 0 ? nullptr : &ts, nullptr);
    if (ret < 0 && errno != EINTR) {
      return SyscallErrorStatus("ppoll", "(SyncBackend eventfd)", errno);
    }
  }
  DrainEventFd();
  std::lock_guard<std::mutex> lock(mu_);
  for (IoRequest* req = completed_.Pop(); req != nullptr; req = completed_.Pop()) {
    ready_.Push(req);
  }
  return Status::OK();
}

IoRequest* SyncBackend::PopCompleted() {
  IoRequest* req = ready_.Pop();
  if (req != nullptr) {
    assert(in_flight_ > 0);
    in_flight_--;
  }
  return req;
}

void SyncBackend::Wake() { Signal(); }

void SyncBackend::Signal() noexcept {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the eventfd is already readable.
  const ssize_t ret = write(event_fd_, &one, sizeof(one));
  assert(ret == sizeof(one) || errno == EAGAIN);
  (void)ret;
}

void SyncBackend::DrainEventFd() noexcept {
  uint64_t count = 0;
  // EAGAIN: nothing to drain. A single read resets an eventfd counter.
  const ssize_t ret = read(event_fd_, &count, sizeof(count));
  assert(ret == sizeof(count) || errno == EAGAIN);
  (void)ret;
}

Status SyncBackend::RegisterBuffers(std::span<const iovec> buffers) {
  registered_buffers_ = static_cast<uint32_t>(buffers.size());
  return Status::OK();
}

}  // namespace dmalog::io

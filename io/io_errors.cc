#include "io/io_errors.h"

#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace dmalog::io {
namespace {

struct ErrnoEntry {
  int value;
  const char* name;
};

// The errnos a storage engine meets. Explicit, so messages say "EIO" and not
// only a locale-dependent strerror text.
constexpr ErrnoEntry kErrnoNames[] = {
    {EPERM, "EPERM"},           {ENOENT, "ENOENT"},
    {EINTR, "EINTR"},           {EIO, "EIO"},
    {ENXIO, "ENXIO"},           {E2BIG, "E2BIG"},
    {EBADF, "EBADF"},           {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},         {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},         {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},         {EXDEV, "EXDEV"},
    {ENODEV, "ENODEV"},         {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},         {EINVAL, "EINVAL"},
    {ENFILE, "ENFILE"},         {EMFILE, "EMFILE"},
    {ETXTBSY, "ETXTBSY"},       {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},         {ESPIPE, "ESPIPE"},
    {EROFS, "EROFS"},           {EMLINK, "EMLINK"},
    {EPIPE, "EPIPE"},           {ERANGE, "ERANGE"},
    {EDEADLK, "EDEADLK"},       {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOLCK, "ENOLCK"},         {ENOSYS, "ENOSYS"},
    {ENOTEMPTY, "ENOTEMPTY"},   {ELOOP, "ELOOP"},
    {ENODATA, "ENODATA"},       {ETIME, "ETIME"},
    {EOVERFLOW, "EOVERFLOW"},   {EBADFD, "EBADFD"},
    {EOPNOTSUPP, "EOPNOTSUPP"}, {ECANCELED, "ECANCELED"},
    {ETIMEDOUT, "ETIMEDOUT"},   {EDQUOT, "EDQUOT"},
    {ESTALE, "ESTALE"},         {EUCLEAN, "EUCLEAN"},
    {EBADMSG, "EBADMSG"},       {ENOTBLK, "ENOTBLK"},
    {ENOTTY, "ENOTTY"},         {EALREADY, "EALREADY"},
};

// The write half of kWriteFdatasync reports as "write"; its fdatasync half
// reports as "fdatasync" (see ApplySyncResult).
const char* OpLabel(IoOp op) noexcept {
  return op == IoOp::kWriteFdatasync ? "write" : IoOpName(op);
}

bool IsRetryable(int err) noexcept { return err == EINTR || err == EAGAIN; }

const char* Hint(int err) noexcept {
  switch (err) {
    case ENOSPC:
      return "; disk full: free space or move the database to a larger disk";
    case EDQUOT:
      return "; disk quota exceeded: raise the quota or free space";
    case EIO:
      return "; the device reported an I/O error: check the kernel log (dmesg)";
    case EROFS:
      return "; the filesystem is read-only: remount it read-write";
    case EFBIG:
      return "; the file would exceed the size limit (ulimit -f or the filesystem's)";
    default:
      return "";
  }
}

Status::Code CodeFor(IoOp op, int err) noexcept {
  if (err == ENOSPC || err == EDQUOT) return Status::Code::kNoSpace;
  if (op == IoOp::kFallocate && (err == EOPNOTSUPP || err == EINVAL)) {
    return Status::Code::kUnsupported;
  }
  return Status::Code::kIOError;
}

Status ResubmitCapStatus(const IoRequest& req, int last_err) {
  char buf[160];
  std::snprintf(
      buf, sizeof(buf), " at offset %" PRIu64 ": gave up after %u resubmissions (last: %s)",
      ChunkOffset(req), kIoResubmitsMax, last_err ? ErrnoName(last_err) : "short transfer");
  std::string msg = std::string(OpLabel(req.op)) + " " + req.path + buf;
  return Status::IOError(msg, last_err);
}

// Counts a resubmission; returns false (and sets the error) past the cap.
bool CountResubmit(IoRequest* req, int last_err) {
  req->resubmits++;
  if (req->resubmits <= kIoResubmitsMax) return true;
  req->status = ResubmitCapStatus(*req, last_err);
  return false;
}

}  // namespace

const char* ErrnoName(int err) noexcept {
  for (const ErrnoEntry& entry : kErrnoNames) {
    if (entry.value == err) return entry.name;
  }
  return "E?";
}

std::string ErrnoDescription(int err) {
  const char* name = ErrnoName(err);
  char buf[96];
  if (std::strcmp(name, "E?") == 0) {
    std::snprintf(buf, sizeof(buf), "errno %d (%s)", err, std::strerror(err));
  } else {
    std::snprintf(buf, sizeof(buf), "%s (%s)", name, std::strerror(err));
  }
  return buf;
}

Status IoErrorStatus(IoOp op, const char* path, uint64_t offset_bytes, int err) {
  std::string msg = OpLabel(op);
  msg += " ";
  msg += path;
  if (op != IoOp::kFdatasync && op != IoOp::kFsync) {
    msg += " at offset " + std::to_string(offset_bytes);
  }
  msg += ": " + ErrnoDescription(err) + Hint(err);
  return Status::FromCode(CodeFor(op, err), err, msg);
}

Status SyscallErrorStatus(const char* syscall_name, const std::string& path, int err,
                          const char* hint) {
  std::string msg = std::string(syscall_name) + " " + path + ": " + ErrnoDescription(err);
  if (hint[0] != '\0') msg += std::string("; ") + hint;
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(msg, err);
  if (err == ENOENT) return Status::FromCode(Status::Code::kNotFound, err, msg);
  return Status::IOError(msg, err);
}

void ResetProgress(IoRequest* req) noexcept {
  req->done_bytes = 0;
  req->resubmits = 0;
  req->cqes_pending = 0;
  req->sync_done = false;
  req->status = Status::OK();
}

bool IsTransfer(IoOp op) noexcept {
  return op == IoOp::kRead || op == IoOp::kWrite || op == IoOp::kWriteFdatasync;
}

uint64_t ChunkBytes(const IoRequest& req) noexcept {
  assert(req.done_bytes <= req.length_bytes);
  const uint64_t remaining = req.length_bytes - req.done_bytes;
  uint64_t limit = kKernelTransferBytesMax;
  if (req.max_transfer_bytes != 0 && req.max_transfer_bytes < limit) {
    limit = req.max_transfer_bytes;
  }
  return remaining < limit ? remaining : limit;
}

uint8_t* ChunkBuf(const IoRequest& req) noexcept { return req.buf + req.done_bytes; }

uint64_t ChunkOffset(const IoRequest& req) noexcept { return req.offset_bytes + req.done_bytes; }

bool ChunkIsLast(const IoRequest& req) noexcept {
  return req.done_bytes + ChunkBytes(req) == req.length_bytes;
}

IoStep ApplyTransferResult(IoRequest* req, uint64_t chunk_bytes, int64_t res) {
  assert(IsTransfer(req->op));
  assert(chunk_bytes <= req->length_bytes - req->done_bytes);
  if (res < 0) {
    const int err = static_cast<int>(-res);
    if (IsRetryable(err)) return CountResubmit(req, err) ? IoStep::kResubmit : IoStep::kDone;
    req->status = IoErrorStatus(req->op, req->path, ChunkOffset(*req), err);
    return IoStep::kDone;
  }
  const uint64_t moved = static_cast<uint64_t>(res);
  assert(moved <= chunk_bytes);
  if (moved == 0 && chunk_bytes > 0) {
    if (req->op == IoOp::kRead) return IoStep::kDone;  // EOF: OK, done_bytes short.
    std::string msg = std::string(OpLabel(req->op)) + " " + req->path + " at offset " +
                      std::to_string(ChunkOffset(*req)) +
                      ": the kernel wrote 0 bytes (no progress)";
    req->status = Status::IOError(msg);
    return IoStep::kDone;
  }
  req->done_bytes += moved;
  if (req->done_bytes == req->length_bytes) return IoStep::kDone;
  if (moved < chunk_bytes && !CountResubmit(req, 0)) return IoStep::kDone;
  return IoStep::kResubmit;
}

IoStep ApplySyncResult(IoRequest* req, int64_t res) {
  if (res < 0) {
    const int err = static_cast<int>(-res);
    if (IsRetryable(err)) return CountResubmit(req, err) ? IoStep::kResubmit : IoStep::kDone;
    const IoOp op = req->op == IoOp::kWriteFdatasync ? IoOp::kFdatasync : req->op;
    req->status = IoErrorStatus(op, req->path, req->offset_bytes, err);
    return IoStep::kDone;
  }
  if (req->op == IoOp::kWriteFdatasync) req->sync_done = true;
  return IoStep::kDone;
}

}  // namespace dmalog::io

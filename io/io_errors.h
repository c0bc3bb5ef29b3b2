// io_errors: errno names, error Status construction, and the retry policy
// shared by every backend (UringBackend and SyncBackend apply the same rules).
//
// A request moves in "chunks": each kernel call transfers at most
// ChunkBytes(req) bytes starting at req->buf + req->done_bytes and
// req->offset_bytes + req->done_bytes. The caller's buf/offset/length fields
// are never modified; the position advances through done_bytes, so a short
// transfer or a split continues where the previous chunk ended.
//
// Outcome rules (identical for all backends):
//   - EINTR / EAGAIN: resubmit the same chunk (counted in req->resubmits).
//   - short read or write: advance and resubmit (counted in req->resubmits).
//   - a chunk limited by max_transfer_bytes that completes fully: continue
//     with the next chunk (a split, not counted as a resubmission).
//   - a zero-byte read: end of file. The request completes with status OK and
//     done_bytes < length_bytes. Reads past EOF are legitimate; callers that
//     need the full length must check done_bytes.
//   - a zero-byte write: error (the kernel made no progress).
//   - ENOSPC: Status::NoSpace ("disk full"); any other errno: Status::IOError
//     (EOPNOTSUPP/EINVAL from fallocate: Status::Unsupported). The message
//     names the operation, the file, the offset and the errno by name.
//   - more than kIoResubmitsMax resubmissions: error.
#pragma once

#include <cstdint>
#include <string>

#include "dmalog/status.h"
#include "io/io_request.h"

namespace dmalog::io {

// Limit on EINTR/EAGAIN/short-transfer resubmissions of one request.
inline constexpr uint32_t kIoResubmitsMax = 256;
// Linux moves at most this much in one read/write call (MAX_RW_COUNT); every
// chunk is capped by it, so chunk sizes also fit io_uring's 32-bit lengths.
inline constexpr uint64_t kKernelTransferBytesMax = 0x7ffff000;
static_assert(kKernelTransferBytesMax <= UINT32_MAX);

// "EIO", "ENOSPC", ... ; "E?" followed by nothing for unknown values (see
// ErrnoDescription for a text that always names the number).
const char* ErrnoName(int err) noexcept;
// "EIO (Input/output error)" or "errno 1234 (Unknown error 1234)".
std::string ErrnoDescription(int err);

// The Status for `op` on `path` at `offset_bytes` failing with `err`.
// `path` is not retained.
Status IoErrorStatus(IoOp op, const char* path, uint64_t offset_bytes, int err);

// A Status for a failed system call that is not an IoRequest, e.g.
// ("open", "/db/0/000001.seg", ENOENT, "check the path") ->
// "open /db/0/000001.seg: ENOENT (No such file or directory); check the path".
// `hint` may be empty.
Status SyscallErrorStatus(const char* syscall_name, const std::string& path, int err,
                          const char* hint = "");

// What the backend must do next with a request.
enum class IoStep : uint8_t {
  kDone,      // req->status is final.
  kResubmit,  // Submit the next chunk (or the same again, after EINTR/EAGAIN).
};

// Resets the io/-maintained fields before a request is first submitted.
void ResetProgress(IoRequest* req) noexcept;

// True for ops that move data (kRead, kWrite, kWriteFdatasync).
bool IsTransfer(IoOp op) noexcept;

// Bytes the next kernel call should move: the remainder, capped by
// max_transfer_bytes when that is non-zero, and by kKernelTransferBytesMax.
uint64_t ChunkBytes(const IoRequest& req) noexcept;
uint8_t* ChunkBuf(const IoRequest& req) noexcept;
uint64_t ChunkOffset(const IoRequest& req) noexcept;
// True when the next chunk is the last one of a kWriteFdatasync, which is the
// one to link (or follow) with the fdatasync.
bool ChunkIsLast(const IoRequest& req) noexcept;

// Applies the result of one read/write chunk: `res` is the byte count, or
// -errno. `chunk_bytes` is what that kernel call was asked to move. For
// kWriteFdatasync, kDone with an OK status means "the data part is done";
// the backend then still needs the fdatasync (see ApplySyncResult).
IoStep ApplyTransferResult(IoRequest* req, uint64_t chunk_bytes, int64_t res);

// Applies the result of an fdatasync/fsync/fallocate (0 or -errno). For
// kWriteFdatasync it sets req->sync_done on success.
IoStep ApplySyncResult(IoRequest* req, int64_t res);

}  // namespace dmalog::io

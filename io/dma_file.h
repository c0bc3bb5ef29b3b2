// DmaFile: a file opened for direct (O_DIRECT) I/O through the executor's
// backend, with the alignment the file itself asks for.
//
// Open() uses O_DIRECT|O_CLOEXEC. A filesystem that refuses O_DIRECT (open
// answers EINVAL: ramfs, some FUSE and network filesystems) gets buffered
// I/O instead, whose durability then comes from fdatasync; one warning line
// per process says so, and require_direct_io turns it into an error.
//
// Alignment is asked of each file, never assumed: statx(STATX_DIOALIGN), then
// the device's logical block size (BLKSSZGET for a block device, sysfs
// queue/logical_block_size for the filesystem's device or its parent disk),
// then kAlignmentBytesDefault. The largest transfer one kernel request should
// carry comes from the device's queue/max_sectors_kb, else
// kMaxTransferBytesDefault.
//
// Async operations return io::IoAwaitable and must be awaited on an executor
// thread. For a direct-I/O file, buf must be aligned to
// memory_alignment_bytes(), length and offset to offset_alignment_bytes()
// (asserted). Reads past end of file are legitimate: the status is OK and
// done_bytes is short (see io_errors.h).
//
// Directory durability: creating, renaming or removing a file is durable only
// after the parent directory is synced: callers must call SyncDirectory(dir)
// after each such change before relying on it.
//
// Move-only. A request in flight keeps pointing at the stored path, which
// stays put when the DmaFile moves; the DmaFile itself must outlive its
// requests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dmalog/status.h"
#include "io/io_request.h"
#include "io/reactor.h"

namespace dmalog::io {

inline constexpr uint32_t kAlignmentBytesDefault = 4096;
inline constexpr uint32_t kMaxTransferBytesDefault = 1u << 20;
// Upper bound on the max transfer taken from sysfs.
inline constexpr uint32_t kMaxTransferBytesMax = 1u << 30;
static_assert(kMaxTransferBytesDefault % kAlignmentBytesDefault == 0);
static_assert(kMaxTransferBytesDefault <= kMaxTransferBytesMax);
// The largest physical block write_alignment_bytes() follows.
inline constexpr uint32_t kWriteAlignmentBytesMax = 64 * 1024;
static_assert(kMaxTransferBytesDefault % kWriteAlignmentBytesMax == 0);

struct DmaFileOptions {
  bool create = false;    // O_CREAT with `mode`.
  bool truncate = false;  // O_TRUNC.
  bool read_only = false;
  // Fail with Status::Unsupported instead of falling back to buffered I/O.
  bool require_direct_io = false;
  // Skip O_DIRECT (tools, tests); no warning.
  bool force_buffered = false;
  // No warning line when falling back to buffered I/O.
  bool quiet = false;
  uint32_t mode = 0644;
};

class DmaFile {
 public:
  static Result<DmaFile> Open(const std::string& path, const DmaFileOptions& options);

  DmaFile(DmaFile&& other) noexcept;
  DmaFile& operator=(DmaFile&& other) noexcept;
  DmaFile(const DmaFile&) = delete;
  DmaFile& operator=(const DmaFile&) = delete;
  // Closes the file if still open, ignoring a close error; call Close() to
  // see it.
  ~DmaFile();

  // Closes the descriptor. Never retried (the descriptor is gone either way).
  Status Close();

  const std::string& path() const noexcept { return *path_; }
  int fd() const noexcept { return fd_; }
  bool direct_io() const noexcept { return direct_io_; }
  uint32_t offset_alignment_bytes() const noexcept { return offset_alignment_bytes_; }
  uint32_t memory_alignment_bytes() const noexcept { return memory_alignment_bytes_; }
  // What appends should align to so that a write never shares a physical
  // block with earlier data: the device's physical block size when it is
  // larger than offset_alignment_bytes() (and at most
  // kWriteAlignmentBytesMax), else offset_alignment_bytes().
  uint32_t write_alignment_bytes() const noexcept { return write_alignment_bytes_; }
  // A multiple of offset_alignment_bytes().
  uint32_t max_transfer_bytes() const noexcept { return max_transfer_bytes_; }
  Result<uint64_t> SizeBytes() const;

  // `buf` is borrowed: it must stay valid until the awaitable completes.
  // `buf_index` is a registered buffer index (Buffer::index) or -1.
  IoAwaitable Read(uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                   int32_t buf_index = -1) const;
  IoAwaitable Write(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                    int32_t buf_index = -1) const;
  // A write linked to an fdatasync: completes when the data is durable.
  IoAwaitable WriteDurable(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                           int32_t buf_index = -1) const;
  // A write with RWF_DSYNC: durable when it completes, in one kernel call.
  // Handed to the kernel at once (IoRequest::submit_now).
  IoAwaitable WriteDsync(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                         int32_t buf_index = -1) const;
  IoAwaitable Fdatasync() const;
  // fallocate mode 0: allocates the range AND extends the file size. That is
  // what preallocated segments want: later O_DIRECT writes land inside
  // i_size, so their fdatasync need not journal a size change (with
  // FALLOC_FL_KEEP_SIZE every append past i_size would). Readers must find
  // the end of the data from the records, not from the file size.
  IoAwaitable Fallocate(uint64_t offset_bytes, uint64_t length_bytes) const;

  // The request behind the awaitables above, for code that drives a backend
  // directly (RunBlocking). Asserts alignment when direct_io().
  IoRequest MakeRequest(IoOp op, const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                        int32_t buf_index = -1) const;

 private:
  DmaFile(std::string path, int fd, bool direct_io);
  void DetectLimits();

  std::unique_ptr<const std::string> path_;  // Heap: c_str() survives moves.
  int fd_ = -1;
  bool direct_io_ = false;
  uint32_t offset_alignment_bytes_ = kAlignmentBytesDefault;
  uint32_t memory_alignment_bytes_ = kAlignmentBytesDefault;
  uint32_t write_alignment_bytes_ = kAlignmentBytesDefault;
  uint32_t max_transfer_bytes_ = kMaxTransferBytesDefault;
};

// fsyncs the directory `dir`, making creations, renames and removals of its
// entries durable. Errors name the operation, the directory and the errno.
Status SyncDirectory(const std::string& dir);

}  // namespace dmalog::io

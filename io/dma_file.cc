#include "io/dma_file.h"

// <sys/stat.h> takes struct statx from <linux/stat.h> when that header
// exists (glibc 2.28+), so include the kernel's first and use its layout,
// which has the STATX_DIOALIGN fields even where glibc's wrapper is older.
#include <linux/stat.h>
// clang-format off
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
// clang-format on

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "io/io_errors.h"

namespace dmalog::io {
namespace {

bool IsPowerOfTwo(uint64_t x) noexcept { return x != 0 && (x & (x - 1)) == 0; }

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void WarnNoDirectIoOnce(const std::string& dir) {
  static std::once_flag warned;
  std::call_once(warned, [&] {
    std::fprintf(stderr,
                 "dmalog: warning: %s does not support O_DIRECT (open: EINVAL; e.g. ramfs, some "
                 "FUSE or network filesystems): using buffered I/O + fdatasync; put the database "
                 "on ext4 or xfs for direct I/O\n",
                 dir.c_str());
  });
}

// A number from a sysfs file, or 0 when absent or unreadable.
uint64_t ReadSysfsNumber(const std::string& file) {
  std::ifstream in(file);
  uint64_t value = 0;
  if (!(in >> value)) return 0;
  return value;
}

// queue/<attribute> of the block device `dev`, or of its parent disk when
// `dev` is a partition (partitions have no queue/ directory). 0 if unknown.
uint64_t ReadQueueAttribute(dev_t dev, const char* attribute) {
  const std::string base =
      "/sys/dev/block/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  const uint64_t own = ReadSysfsNumber(base + "/queue/" + attribute);
  if (own != 0) return own;
  return ReadSysfsNumber(base + "/../queue/" + attribute);
}

struct DioAlign {
  uint32_t offset_bytes = 0;
  uint32_t memory_bytes = 0;
};

DioAlign StatxDioAlign(int fd) {
  struct statx stx {};
  const long ret = syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
  if (ret != 0 || (stx.stx_mask & STATX_DIOALIGN) == 0) return {};
  return DioAlign{stx.stx_dio_offset_align, stx.stx_dio_mem_align};
}

// The logical block size of the device behind `st`, or 0 if unknown.
uint32_t LogicalBlockBytes(int fd, const struct stat& st) {
  if (S_ISBLK(st.st_mode)) {
    int bytes = 0;
    if (ioctl(fd, BLKSSZGET, &bytes) == 0 && bytes > 0) return static_cast<uint32_t>(bytes);
    return 0;
  }
  if (major(st.st_dev) == 0) return 0;  // tmpfs, ramfs, FUSE...: no block device.
  return static_cast<uint32_t>(ReadQueueAttribute(st.st_dev, "logical_block_size"));
}

// The physical block size of the device behind `st` (4096 on a "512e" disk
// whose logical blocks are 512 B), or 0 if unknown.
uint32_t PhysicalBlockBytes(int fd, const struct stat& st) {
  if (S_ISBLK(st.st_mode)) {
    unsigned int bytes = 0;
    if (ioctl(fd, BLKPBSZGET, &bytes) == 0 && bytes > 0) return bytes;
    return 0;
  }
  if (major(st.st_dev) == 0) return 0;
  return static_cast<uint32_t>(ReadQueueAttribute(st.st_dev, "physical_block_size"));
}

uint32_t MaxTransferBytes(const struct stat& st, uint32_t alignment_bytes) {
  const dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
  uint64_t bytes = major(dev) == 0 ? 0 : ReadQueueAttribute(dev, "max_sectors_kb") * 1024;
  if (bytes == 0) bytes = kMaxTransferBytesDefault;
  if (bytes > kMaxTransferBytesMax) bytes = kMaxTransferBytesMax;
  bytes -= bytes % alignment_bytes;
  return bytes == 0 ? alignment_bytes : static_cast<uint32_t>(bytes);
}

}  // namespace

Result<DmaFile> DmaFile::Open(const std::string& path, const DmaFileOptions& options) {
  if (options.require_direct_io && options.force_buffered) {
    return Status::InvalidArgument("open " + path +
                                   ": require_direct_io and force_buffered conflict");
  }
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.create) flags |= O_CREAT;
  if (options.truncate) flags |= O_TRUNC;
  const bool existed = access(path.c_str(), F_OK) == 0;
  int fd = -1;
  bool direct_io = false;
  if (!options.force_buffered) {
    fd = open(path.c_str(), flags | O_DIRECT, options.mode);
    direct_io = fd >= 0;
    if (fd < 0 && errno != EINVAL) return SyscallErrorStatus("open", path, errno);
    if (fd < 0 && options.require_direct_io) {
      // O_CREAT may have created the file before O_DIRECT was refused.
      if (!existed && options.create) unlink(path.c_str());
      return Status::Unsupported(DirName(path) +
                                     " does not support O_DIRECT (open: EINVAL; e.g. ramfs, "
                                     "some FUSE or network filesystems); put the database on "
                                     "ext4 or xfs, or allow buffered I/O",
                                 EINVAL);
    }
    if (fd < 0 && !options.quiet) WarnNoDirectIoOnce(DirName(path));
  }
  if (fd < 0) {
    fd = open(path.c_str(), flags, options.mode);
    if (fd < 0) return SyscallErrorStatus("open", path, errno);
  }
  DmaFile file(path, fd, direct_io);
  file.DetectLimits();
  return file;
}

DmaFile::DmaFile(std::string path, int fd, bool direct_io)
    : path_(std::make_unique<const std::string>(std::move(path))), fd_(fd), direct_io_(direct_io) {}

DmaFile::DmaFile(DmaFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      direct_io_(other.direct_io_),
      offset_alignment_bytes_(other.offset_alignment_bytes_),
      memory_alignment_bytes_(other.memory_alignment_bytes_),
      write_alignment_bytes_(other.write_alignment_bytes_),
      max_transfer_bytes_(other.max_transfer_bytes_) {
  other.fd_ = -1;
}

DmaFile& DmaFile::operator=(DmaFile&& other) noexcept {
  if (this == &other) return *this;
  Close().IgnoreError();  // Overwriting an open file: same as its destructor.
  path_ = std::move(other.path_);
  fd_ = other.fd_;
  direct_io_ = other.direct_io_;
  offset_alignment_bytes_ = other.offset_alignment_bytes_;
  memory_alignment_bytes_ = other.memory_alignment_bytes_;
  write_alignment_bytes_ = other.write_alignment_bytes_;
  max_transfer_bytes_ = other.max_transfer_bytes_;
  other.fd_ = -1;
  return *this;
}

DmaFile::~DmaFile() { Close().IgnoreError(); }

Status DmaFile::Close() {
  if (fd_ < 0) return Status::OK();
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) {
    return SyscallErrorStatus("close", *path_, errno,
                              "data written since the last fdatasync may be lost");
  }
  return Status::OK();
}

void DmaFile::DetectLimits() {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return;  // Keep the defaults; SizeBytes reports errors.
  const DioAlign dio = StatxDioAlign(fd_);
  uint32_t offset_bytes = dio.offset_bytes;
  uint32_t memory_bytes = dio.memory_bytes;
  if (offset_bytes == 0) offset_bytes = LogicalBlockBytes(fd_, st);
  if (offset_bytes == 0 || !IsPowerOfTwo(offset_bytes)) offset_bytes = kAlignmentBytesDefault;
  // Without statx's answer, O_DIRECT memory has traditionally needed the
  // logical block size too.
  if (memory_bytes == 0 || !IsPowerOfTwo(memory_bytes)) memory_bytes = offset_bytes;
  offset_alignment_bytes_ = offset_bytes;
  memory_alignment_bytes_ = memory_bytes;
  // A write smaller than a physical block makes the device read, modify and
  // write the whole block, and a power cut then can damage the block's
  // other bytes: appends that must never touch acknowledged data align to
  // the physical block (Seastar's disk_write_dma_alignment does the same).
  const uint32_t physical_bytes = PhysicalBlockBytes(fd_, st);
  write_alignment_bytes_ = offset_bytes;
  if (IsPowerOfTwo(physical_bytes) && physical_bytes > offset_bytes &&
      physical_bytes <= kWriteAlignmentBytesMax) {
    write_alignment_bytes_ = physical_bytes;
  }
  max_transfer_bytes_ = MaxTransferBytes(st, write_alignment_bytes_);
  assert(max_transfer_bytes_ % offset_alignment_bytes_ == 0);
  assert(write_alignment_bytes_ % offset_alignment_bytes_ == 0);
}

Result<uint64_t> DmaFile::SizeBytes() const {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return SyscallErrorStatus("fstat", *path_, errno);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd_, BLKGETSIZE64, &bytes) != 0) {
      return SyscallErrorStatus("ioctl(BLKGETSIZE64)", *path_, errno);
    }
    return bytes;
  }
  return static_cast<uint64_t>(st.st_size);
}

IoRequest DmaFile::MakeRequest(IoOp op, const uint8_t* buf, uint64_t length_bytes,
                               uint64_t offset_bytes, int32_t buf_index) const {
  assert(fd_ >= 0 && "I/O on a closed DmaFile");
  if (direct_io_ && IsTransfer(op)) {
    assert(reinterpret_cast<uintptr_t>(buf) % memory_alignment_bytes_ == 0);
    assert(length_bytes % offset_alignment_bytes_ == 0);
    assert(offset_bytes % offset_alignment_bytes_ == 0);
  }
  IoRequest req;
  req.op = op;
  req.fd = fd_;
  req.buf = const_cast<uint8_t*>(buf);  // Writes only read it.
  req.length_bytes = length_bytes;
  req.offset_bytes = offset_bytes;
  req.buf_index = buf_index;
  req.max_transfer_bytes = max_transfer_bytes_;
  req.path = path_->c_str();
  return req;
}

IoAwaitable DmaFile::Read(uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                          int32_t buf_index) const {
  return IoAwaitable(MakeRequest(IoOp::kRead, buf, length_bytes, offset_bytes, buf_index));
}

IoAwaitable DmaFile::Write(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                           int32_t buf_index) const {
  return IoAwaitable(MakeRequest(IoOp::kWrite, buf, length_bytes, offset_bytes, buf_index));
}

IoAwaitable DmaFile::WriteDurable(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                                  int32_t buf_index) const {
  return IoAwaitable(
      MakeRequest(IoOp::kWriteFdatasync, buf, length_bytes, offset_bytes, buf_index));
}

IoAwaitable DmaFile::WriteDsync(const uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                                int32_t buf_index) const {
  IoRequest req = MakeRequest(IoOp::kWrite, buf, length_bytes, offset_bytes, buf_index);
  req.rw_flags = RWF_DSYNC;
  req.submit_now = true;  // Its writers wait on it: do not hold it for a batch.
  return IoAwaitable(req);
}

IoAwaitable DmaFile::Fdatasync() const {
  return IoAwaitable(MakeRequest(IoOp::kFdatasync, nullptr, 0, 0));
}

IoAwaitable DmaFile::Fallocate(uint64_t offset_bytes, uint64_t length_bytes) const {
  IoRequest req = MakeRequest(IoOp::kFallocate, nullptr, length_bytes, offset_bytes);
  req.fallocate_mode = 0;  // See the header: allocate and extend i_size.
  return IoAwaitable(req);
}

Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SyscallErrorStatus("open directory", dir, errno);
  Status status;
  if (fsync(fd) != 0) {
    status = SyscallErrorStatus("fsync directory", dir, errno,
                                "recent file creations, renames or removals may not be durable");
  }
  if (close(fd) != 0 && status.ok()) status = SyscallErrorStatus("close directory", dir, errno);
  return status;
}

}  // namespace dmalog::io

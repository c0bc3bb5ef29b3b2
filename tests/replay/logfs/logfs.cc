// dmalog_logfs: a FUSE filesystem with one regular file, disk.img, that logs
// every write and every flush (a userspace stand-in for dm-log-writes).
//
//   dmalog_logfs BACKING_FILE LOG_FILE SIZE_BYTES MOUNT_POINT
//
// disk.img is SIZE_BYTES long and backed by BACKING_FILE (created sparse,
// i.e. all zeros). Reads are served from the backing file. Every write is
// applied to the backing file and appended to LOG_FILE (offset, length,
// data); every fsync/fdatasync is appended as a flush record stamped with
// CLOCK_MONOTONIC when the request arrived; fallocate punch-hole/zero-range
// (loop discard and write-zeroes) is logged as a zero record. The format is
// tests/replay/logfs/log_format.h.
//
// Runs in the foreground (-f) and single-threaded (-s), so requests are
// handled, and logged, in the order they arrive. Files are opened with
// direct_io, so the kernel's page cache of disk.img absorbs nothing: each
// write a loop device issues reaches this daemon before it completes. The
// daemon syncs nothing: it only logs. Stop it with `fusermount3 -u`.
// Exit status 0, or 1 if any request failed (named on stderr).
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "log_format.h"  // Same directory: dmalog_logfs has no include path.

namespace {

namespace lf = dmalog::replay::logfs;

struct State {
  std::string backing_path;
  std::string log_path;
  int backing_fd = -1;
  int log_fd = -1;
  uint64_t size_bytes = 0;
  uint64_t writes = 0;
  uint64_t zeroes = 0;
  uint64_t flushes = 0;
  uint64_t write_bytes = 0;
  uint64_t last_time_ns = 0;  // Of the last record: the log is in arrival order.
  bool failed = false;
};
State g;  // One filesystem per process; FUSE callbacks take no context.

// Each read/write/append loop makes progress every pass; this bounds them.
constexpr int kIoPassesMax = 1024;

const std::string kDiskPath = std::string("/") + lf::kDiskFileName;

uint64_t NowNs() {
  timespec ts{};
  const int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
  assert(rc == 0);
  (void)rc;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Names the failure on stderr, remembers it for the exit status, returns -err.
int Fail(const char* operation, const char* file, int err) {
  std::fprintf(stderr, "dmalog_logfs: %s %s: %s (%s)\n", operation, file, strerrorname_np(err),
               strerror(err));
  g.failed = true;
  return -err;
}

// Appends one record (and `data`, for writes) to the log; 0 or -errno.
int AppendRecord(uint32_t type, uint64_t time_ns, uint64_t offset, uint64_t length,
                 const char* data) {
  assert((type == lf::kRecordWrite) == (data != nullptr));
  assert(time_ns >= g.last_time_ns);  // Single-threaded: requests in arrival order.
  g.last_time_ns = time_ns;
  lf::RecordHeader header{type, 0, time_ns, offset, length};
  const size_t data_bytes = data != nullptr ? length : 0;
  iovec iov[2] = {{&header, sizeof(header)}, {const_cast<char*>(data), data_bytes}};
  const size_t total = sizeof(header) + data_bytes;
  // A bounded loop: each pass writes at least one byte or fails.
  size_t done = 0;
  for (int pass = 0; done < total && pass < kIoPassesMax; ++pass) {
    const size_t skip = done;
    iovec part[2];
    int count = 0;
    size_t seen = 0;
    for (const iovec& v : iov) {
      if (seen + v.iov_len > skip) {
        const size_t cut = skip > seen ? skip - seen : 0;
        part[count++] = {static_cast<char*>(v.iov_base) + cut, v.iov_len - cut};
      }
      seen += v.iov_len;
    }
    const ssize_t n = writev(g.log_fd, part, count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail("appending to the log", g.log_path.c_str(), n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return done == total ? 0 : Fail("appending to the log", g.log_path.c_str(), EIO);
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* /*fi*/) {
  *st = {};
  if (std::string(path) == "/") {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (kDiskPath != path) return -ENOENT;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(g.size_bytes);
  st->st_blocks = static_cast<blkcnt_t>(g.size_bytes / 512);
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t /*offset*/,
            fuse_file_info* /*fi*/, fuse_readdir_flags /*flags*/) {
  if (std::string(path) != "/") return -ENOENT;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, lf::kDiskFileName, nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  if (kDiskPath != path) return -ENOENT;
  fi->direct_io = 1;  // No page cache: every write reaches the daemon.
  fi->keep_cache = 0;
  return 0;
}

// Clamps [offset, offset + size) to the disk; the bytes inside it.
size_t InDisk(off_t offset, size_t size) {
  if (offset < 0 || static_cast<uint64_t>(offset) >= g.size_bytes) return 0;
  return static_cast<size_t>(std::min<uint64_t>(size, g.size_bytes - offset));
}

int Read(const char* path, char* buf, size_t size, off_t offset, fuse_file_info* /*fi*/) {
  if (kDiskPath != path) return -ENOENT;
  const size_t want = InDisk(offset, size);
  size_t done = 0;
  for (int pass = 0; done < want && pass < kIoPassesMax; ++pass) {
    const ssize_t n = pread(g.backing_fd, buf + done, want - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("pread", g.backing_path.c_str(), errno);
    if (n == 0) break;  // Never: the backing file is SIZE_BYTES long.
    done += static_cast<size_t>(n);
  }
  assert(done == want);
  return static_cast<int>(done);
}

int Write(const char* path, const char* buf, size_t size, off_t offset, fuse_file_info* /*fi*/) {
  const uint64_t now_ns = NowNs();
  if (kDiskPath != path) return -ENOENT;
  assert(size <= lf::kWriteBytesMax);
  if (InDisk(offset, size) != size) return -ENOSPC;  // Past the end of the disk.
  size_t done = 0;
  for (int pass = 0; done < size && pass < kIoPassesMax; ++pass) {
    const ssize_t n = pwrite(g.backing_fd, buf + done, size - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail("pwrite", g.backing_path.c_str(), n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  assert(done == size);
  const int rc = AppendRecord(lf::kRecordWrite, now_ns, static_cast<uint64_t>(offset), size, buf);
  if (rc != 0) return rc;
  g.writes++;
  g.write_bytes += size;
  return static_cast<int>(size);
}

int Fsync(const char* path, int /*datasync*/, fuse_file_info* /*fi*/) {
  const uint64_t arrival_ns = NowNs();  // Before anything else: the flush point.
  if (kDiskPath != path) return -ENOENT;
  const int rc = AppendRecord(lf::kRecordFlush, arrival_ns, 0, 0, nullptr);
  if (rc != 0) return rc;
  g.flushes++;
  return 0;
}

// close(2) of a descriptor: not a device flush (the loop device flushes with
// fsync), so nothing is logged.
int Flush(const char* /*path*/, fuse_file_info* /*fi*/) { return 0; }

int Fallocate(const char* path, int mode, off_t offset, off_t length, fuse_file_info* /*fi*/) {
  const uint64_t now_ns = NowNs();
  if (kDiskPath != path) return -ENOENT;
  const int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  const int kZero = FALLOC_FL_ZERO_RANGE;
  if (mode != kPunch && (mode & ~FALLOC_FL_KEEP_SIZE) != kZero) return -EOPNOTSUPP;
  if (length <= 0 || InDisk(offset, length) != static_cast<size_t>(length)) return -EINVAL;
  // Both modes leave the range reading as zeros; punch a hole either way.
  if (fallocate(g.backing_fd, kPunch, offset, length) != 0) {
    return Fail("fallocate", g.backing_path.c_str(), errno);
  }
  const int rc = AppendRecord(lf::kRecordZero, now_ns, static_cast<uint64_t>(offset),
                              static_cast<uint64_t>(length), nullptr);
  if (rc != 0) return rc;
  g.zeroes++;
  return 0;
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->direct_io = 1;
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 3600;  // The size never changes.
  cfg->entry_timeout = 3600;
  // One request at a time, in arrival order: no asynchronous direct I/O
  // (it would let the kernel queue several writes of one request at once).
  conn->want &= ~FUSE_CAP_ASYNC_DIO;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  return nullptr;
}

// Fail() for main(): the exit status 1.
int FailExit(const char* operation, const std::string& file, int err) {
  Fail(operation, file.c_str(), err);
  return 1;
}

int Usage() {
  std::fprintf(stderr, "usage: dmalog_logfs BACKING_FILE LOG_FILE SIZE_BYTES MOUNT_POINT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return Usage();
  const std::string backing = argv[1], log = argv[2], mount_point = argv[4];
  g.backing_path = backing;
  g.log_path = log;
  g.size_bytes = std::strtoull(argv[3], nullptr, 10);
  if (g.size_bytes == 0 || g.size_bytes % 4096 != 0 || g.size_bytes > lf::kDiskSizeBytesMax) {
    std::fprintf(stderr, "dmalog_logfs: SIZE_BYTES must be a multiple of 4096 up to %llu\n",
                 static_cast<unsigned long long>(lf::kDiskSizeBytesMax));
    return Usage();
  }
  g.backing_fd = open(backing.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (g.backing_fd < 0) return FailExit("creating", backing, errno);
  if (ftruncate(g.backing_fd, static_cast<off_t>(g.size_bytes)) != 0) {
    return FailExit("ftruncate", backing, errno);
  }
  g.log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (g.log_fd < 0) return FailExit("creating", log, errno);
  lf::LogHeader header{};
  std::memcpy(header.magic, lf::kLogMagic, sizeof(header.magic));
  header.disk_size_bytes = g.size_bytes;
  if (write(g.log_fd, &header, sizeof(header)) != static_cast<ssize_t>(sizeof(header))) {
    return FailExit("writing the header of", log, errno);
  }

  fuse_operations ops{};
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.fsync = Fsync;
  ops.flush = Flush;
  ops.fallocate = Fallocate;
  ops.init = Init;
  // Foreground, single-threaded (arrival order), this mount point.
  std::string fuse_args[] = {argv[0], "-f", "-s", "-o", "fsname=dmalog_logfs", mount_point};
  constexpr int kFuseArgCount = sizeof(fuse_args) / sizeof(fuse_args[0]);
  char* fuse_argv[kFuseArgCount + 1] = {};
  for (int i = 0; i < kFuseArgCount; ++i) fuse_argv[i] = fuse_args[i].data();
  const int rc = fuse_main(kFuseArgCount, fuse_argv, &ops, nullptr);
  std::fprintf(
      stderr, "dmalog_logfs: writes %llu (%llu bytes), zero ranges %llu, flushes %llu\n",
      static_cast<unsigned long long>(g.writes), static_cast<unsigned long long>(g.write_bytes),
      static_cast<unsigned long long>(g.zeroes), static_cast<unsigned long long>(g.flushes));
  if (close(g.log_fd) != 0) Fail("closing", log.c_str(), errno);
  if (close(g.backing_fd) != 0) Fail("closing", backing.c_str(), errno);
  return rc != 0 || g.failed ? 1 : 0;
}

#include "tests/replay/flush_log_util.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <cassert>
#include <cstring>

#include "tests/replay/logfs/log_format.h"
#include "tests/replay/replay_util.h"

namespace dmalog::testing {
namespace {

namespace lf = replay::logfs;

// Limits: a log of at most this many records; a copy of at most this many
// extents (one per 4 KiB block is the worst case).
constexpr size_t kLogRecordsMax = 10'000'000;
constexpr uint64_t kCopyChunkBytesMax = 64ull << 20;

// Reads exactly `n` bytes at `offset`: OK, or an error naming the file.
Status PreadFull(int fd, void* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {  // Each pass reads at least one byte or returns.
    const ssize_t r = pread(fd, static_cast<char*>(buf) + done, n - done, offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError(ErrnoText("pread", path, errno), errno);
    if (r == 0) {
      return Status::Corruption(path + ": ends at offset " + std::to_string(offset + done) +
                                " inside a record of " + std::to_string(n) + " bytes");
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status PwriteFull(int fd, const void* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {  // Each pass writes at least one byte or returns.
    const ssize_t r = pwrite(fd, static_cast<const char*>(buf) + done, n - done, offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IOError(ErrnoText("pwrite", path, r < 0 ? errno : EIO), errno);
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status CheckRecord(const lf::RecordHeader& h, uint64_t disk_size_bytes, uint64_t at,
                   const std::string& path) {
  const std::string where = path + " record at offset " + std::to_string(at) + ": ";
  if (h.reserved != 0) return Status::Corruption(where + "reserved field is not zero");
  switch (h.type) {
    case lf::kRecordWrite:
      if (h.length_bytes == 0 || h.length_bytes > lf::kWriteBytesMax) {
        return Status::Corruption(where + "write of " + std::to_string(h.length_bytes) + " bytes");
      }
      [[fallthrough]];
    case lf::kRecordZero:
      if (h.offset_bytes > disk_size_bytes || h.length_bytes > disk_size_bytes - h.offset_bytes) {
        return Status::Corruption(where + "range past the end of the disk");
      }
      return Status::OK();
    case lf::kRecordFlush:
      return h.offset_bytes == 0 && h.length_bytes == 0
                 ? Status::OK()
                 : Status::Corruption(where + "flush with a range");
    default:
      return Status::Corruption(where + "unknown type " + std::to_string(h.type));
  }
}

}  // namespace

Result<FlushLog> ReadFlushLog(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(ErrnoText("open", path, errno), errno);
  FlushLog log;
  log.path = path;
  const off_t end = lseek(fd, 0, SEEK_END);
  lf::LogHeader header{};
  Status s = PreadFull(fd, &header, sizeof(header), 0, path);
  if (s.ok() && std::memcmp(header.magic, lf::kLogMagic, sizeof(header.magic)) != 0) {
    s = Status::Corruption(path + ": not a dmalog_logfs log (bad magic)");
  }
  log.disk_size_bytes = header.disk_size_bytes;
  uint64_t at = sizeof(header);
  uint64_t last_time_ns = 0;
  while (s.ok() && at < static_cast<uint64_t>(end) && log.records.size() < kLogRecordsMax) {
    lf::RecordHeader h{};
    s = PreadFull(fd, &h, sizeof(h), at, path);
    if (s.ok()) s = CheckRecord(h, log.disk_size_bytes, at, path);
    if (s.ok() && h.time_ns < last_time_ns) {
      s = Status::Corruption(path + " record at offset " + std::to_string(at) +
                             ": time goes back (the daemon is single-threaded)");
    }
    if (!s.ok()) break;
    last_time_ns = h.time_ns;
    FlushLogRecord r{h.type, h.time_ns, h.offset_bytes, h.length_bytes, at + sizeof(h)};
    at += sizeof(h) + (h.type == lf::kRecordWrite ? h.length_bytes : 0);
    if (at > static_cast<uint64_t>(end)) {
      s = Status::Corruption(path + ": the last write record is cut short");
      break;
    }
    if (h.type == lf::kRecordFlush) log.flushes.push_back(log.records.size());
    if (h.type == lf::kRecordWrite) log.writes++, log.write_bytes += h.length_bytes;
    if (h.type == lf::kRecordZero) log.zero_ranges++;
    log.records.push_back(r);
  }
  close(fd);
  if (s.ok() && at < static_cast<uint64_t>(end)) {
    s = Status::InvalidArgument(path + ": more than " + std::to_string(kLogRecordsMax) +
                                " records (kLogRecordsMax): shorten the workload");
  }
  if (!s.ok()) return s;
  return log;
}

Result<std::unique_ptr<ImageBuilder>> ImageBuilder::Create(const FlushLog* log,
                                                           const std::string& image_path) {
  const int log_fd = open(log->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (log_fd < 0) return Status::IOError(ErrnoText("open", log->path, errno), errno);
  const int image_fd = open(image_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (image_fd < 0) {
    const int err = errno;
    close(log_fd);
    return Status::IOError(ErrnoText("create", image_path, err), err);
  }
  std::unique_ptr<ImageBuilder> b(new ImageBuilder(log, image_path, log_fd, image_fd));
  if (ftruncate(image_fd, static_cast<off_t>(log->disk_size_bytes)) != 0) {
    return Status::IOError(ErrnoText("ftruncate", image_path, errno), errno);
  }
  b->buffer_.resize(lf::kWriteBytesMax);
  return b;
}

ImageBuilder::~ImageBuilder() {
  close(log_fd_);
  close(image_fd_);
}

Status ImageBuilder::ApplyUntil(size_t end) {
  assert(end >= next_ && end <= log_->records.size());
  for (; next_ < end; ++next_) {
    const FlushLogRecord& r = log_->records[next_];
    if (r.type == lf::kRecordWrite) {
      assert(r.length_bytes <= buffer_.size());
      DMALOG_RETURN_IF_ERROR(
          PreadFull(log_fd_, buffer_.data(), r.length_bytes, r.data_position, log_->path));
      DMALOG_RETURN_IF_ERROR(
          PwriteFull(image_fd_, buffer_.data(), r.length_bytes, r.offset_bytes, image_path_));
    } else if (r.type == lf::kRecordZero) {
      if (fallocate(image_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(r.offset_bytes), static_cast<off_t>(r.length_bytes)) != 0) {
        return Status::IOError(ErrnoText("fallocate punch-hole", image_path_, errno), errno);
      }
    }
  }
  return Status::OK();
}

Status ImageBuilder::CopyTo(const std::string& path) {
  const int out = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return Status::IOError(ErrnoText("create", path, errno), errno);
  Status s;
  if (ftruncate(out, static_cast<off_t>(log_->disk_size_bytes)) != 0) {
    s = Status::IOError(ErrnoText("ftruncate", path, errno), errno);
  }
  const off_t size = static_cast<off_t>(log_->disk_size_bytes);
  off_t at = 0;
  // Each pass copies one data extent (or part of one) and moves forward.
  while (s.ok() && at < size) {
    const off_t data = lseek(image_fd_, at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // Only a hole is left.
    const off_t hole = data < 0 ? -1 : lseek(image_fd_, data, SEEK_HOLE);
    if (data < 0 || hole < 0) {
      s = Status::IOError(ErrnoText("lseek SEEK_DATA/SEEK_HOLE", image_path_, errno), errno);
      break;
    }
    off_t in = data, to = data;
    const size_t n = static_cast<size_t>(std::min<off_t>(hole - data, kCopyChunkBytesMax));
    ssize_t r = copy_file_range(image_fd_, &in, out, &to, n, 0);
    if (r < 0 && (errno == EXDEV || errno == EOPNOTSUPP)) {  // Another filesystem.
      r = static_cast<ssize_t>(std::min(n, buffer_.size()));
      s = PreadFull(image_fd_, buffer_.data(), r, data, image_path_);
      if (s.ok()) s = PwriteFull(out, buffer_.data(), r, data, path);
      if (!s.ok()) break;
    }
    if (r <= 0) {
      s = Status::IOError(ErrnoText("copy_file_range to", path, r < 0 ? errno : EIO), errno);
      break;
    }
    at = data + r;
  }
  if (close(out) != 0 && s.ok()) s = Status::IOError(ErrnoText("close", path, errno), errno);
  return s;
}

}  // namespace dmalog::testing

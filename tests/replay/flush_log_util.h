// Reading the log of dmalog_logfs (tests/replay/logfs/log_format.h) and
// rebuilding the disk image as it stood at any point of that log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dmalog/status.h"

namespace dmalog::testing {

struct FlushLogRecord {
  uint32_t type = 0;  // replay::logfs::RecordType.
  uint64_t time_ns = 0;
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  uint64_t data_position = 0;  // Where a write's data starts in the log file.
};

struct FlushLog {
  std::string path;
  uint64_t disk_size_bytes = 0;
  std::vector<FlushLogRecord> records;  // In log order.
  std::vector<size_t> flushes;          // Indexes of the flush records, in order.
  uint64_t writes = 0;
  uint64_t write_bytes = 0;
  uint64_t zero_ranges = 0;
};

// Reads and checks the record headers (the data stays in the file). Corruption
// naming the file and offset when the log is not well formed.
Result<FlushLog> ReadFlushLog(const std::string& path);

// The disk image at a point of the log, built in a file by applying the
// records in order, starting from zeros (the daemon's fresh backing file).
class ImageBuilder {
 public:
  // `log` must outlive the builder (not owned). Creates `image_path`.
  static Result<std::unique_ptr<ImageBuilder>> Create(const FlushLog* log,
                                                      const std::string& image_path);
  ~ImageBuilder();
  ImageBuilder(const ImageBuilder&) = delete;
  ImageBuilder& operator=(const ImageBuilder&) = delete;

  // Applies records [applied(), end): the image is then the disk after the
  // first `end` records. `end` never goes back.
  Status ApplyUntil(size_t end);
  size_t applied() const { return next_; }
  // Writes a copy of the image to `path` (sparse; replaced if present).
  Status CopyTo(const std::string& path);

 private:
  ImageBuilder(const FlushLog* log, std::string image_path, int log_fd, int image_fd)
      : log_(log), image_path_(std::move(image_path)), log_fd_(log_fd), image_fd_(image_fd) {}
  const FlushLog* log_;
  std::string image_path_;
  int log_fd_ = -1;
  int image_fd_ = -1;
  size_t next_ = 0;
  std::vector<char> buffer_;
};

}  // namespace dmalog::testing

// SegmentScanner: reads one segment's records in log order through the
// executor's ring, for recovery and for `tail`. It keeps a window of the
// file in a caller-supplied aligned buffer; the window is at least as large
// as the largest record, so every record can be decoded whole.
#pragma once

#include <cstdint>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/record.h"
#include "engine/segment.h"

namespace dmalog::engine {

// The window: the largest record plus alignment slack, rounded up.
inline constexpr uint32_t kScanWindowBytes = 4u << 20;
static_assert(kScanWindowBytes >= format::kRecordHeaderBytes + format::kKeyBytesMax +
                                      format::kBatchBytesMax + 2 * format::kWriteAlignmentBytesMax,
              "the scan window holds the largest record at any alignment");

struct ScanItem {
  DecodeOutcome outcome;       // kZero also means "the end of the readable file".
  RecordView record;           // Valid when outcome == kRecord, until the next call.
  uint64_t offset_bytes;       // Where the item starts in the segment.
  uint32_t claimed_bytes = 0;  // kBadChecksum: DecodeResult::claimed_bytes.
};

class SegmentScanner {
 public:
  // `segment` and `window` (kScanWindowBytes, aligned to the segment's memory
  // alignment) are borrowed for the scanner's life. Scans [start, limit).
  SegmentScanner(const Segment& segment, uint64_t start_bytes, uint64_t limit_bytes,
                 uint8_t* window);

  // The item at the current position (skipping a sub-header gap before an
  // alignment boundary, which a flush leaves as zeros). Does not advance.
  Task<Result<ScanItem>> Peek();
  // Moves past the record Peek returned.
  void Advance(uint32_t record_bytes) noexcept { position_bytes_ += record_bytes; }
  void Seek(uint64_t offset_bytes) noexcept { position_bytes_ = offset_bytes; }
  uint64_t position_bytes() const noexcept { return position_bytes_; }

  // The first aligned offset >= `from_bytes` holding a record whose checksum
  // verifies (flushes start aligned), or nullopt if none before the limit.
  Task<Result<std::optional<uint64_t>>> FindValidRecordFrom(uint64_t from_bytes) {
    return FindFrom(from_bytes, /*flush_start_only=*/false);
  }
  // Where the next valid record after the damaged one at `damaged_bytes`
  // starts: where the damaged record's own header says (intact when only
  // its key or value bytes were damaged), else FindValidRecordFrom. Moves
  // the position.
  Task<Result<std::optional<uint64_t>>> FindValidRecordAfter(uint64_t damaged_bytes);
  // The same, for a valid record that starts a flush (any valid record in a
  // segment whose writer did not mark flush starts).
  Task<Result<std::optional<uint64_t>>> FindFlushStartFrom(uint64_t from_bytes) {
    return FindFrom(from_bytes, /*flush_start_only=*/segment_.marks_flush_starts());
  }

  // The bytes of the window at [offset, offset + n), loaded if needed.
  Task<Result<std::span<const uint8_t>>> Bytes(uint64_t offset_bytes, uint32_t n);

 private:
  Task<Result<std::optional<uint64_t>>> FindFrom(uint64_t from_bytes, bool flush_start_only);
  uint64_t SkipGap(uint64_t offset) const noexcept;
  // The outcome of a record truncated at `view` (the bytes from it to the
  // window's end): kZero when the file ends there in fewer than a header's
  // bytes, all zero; kTruncated otherwise.
  DecodeOutcome ZeroTailOutcome(std::span<const uint8_t> view) const noexcept;
  // Makes the window cover [offset, offset + n) as far as the limit allows.
  Task<Status> Load(uint64_t offset_bytes, uint32_t n);
  std::span<const uint8_t> View(uint64_t offset_bytes) const noexcept;

  const Segment& segment_;
  const uint64_t limit_bytes_;
  uint8_t* const window_;
  uint64_t window_start_bytes_ = 0;
  uint64_t window_valid_bytes_ = 0;
  uint64_t position_bytes_;
};

}  // namespace dmalog::engine

// Segment: one fixed-size, preallocated log file of a shard (format.md).
//
// Creation zero-fills the whole file rather than fallocate()ing it: O_DIRECT
// writes into unwritten extents make every fdatasync commit the journal to
// convert them, and docs/format.md records the measured difference.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/index.h"
#include "engine/record.h"
#include "io/dma_file.h"
#include "io/fs.h"

namespace dmalog::engine {

// "00000042.seg" for id 42.
std::string SegmentFileName(uint64_t id);
// True for a segment left half-built by a crash ("00000042.seg.tmp").
bool IsTemporarySegmentFileName(const std::string& name);
// The id of a segment file name, or nullopt for any other name.
std::optional<uint64_t> ParseSegmentFileName(const std::string& name);

class Segment {
 public:
  // Creates segment `id` of `size_bytes` in `dir` (owned by the caller,
  // borrowed for the call): zero-filled, header in the first aligned block,
  // fdatasync'ed, directory synced. `zeros` is an aligned buffer of
  // `zeros_bytes` zero bytes, borrowed for the call.
  static Task<Result<std::unique_ptr<Segment>>> Create(const io::Directory& dir, uint32_t shard,
                                                       uint64_t id, uint64_t size_bytes,
                                                       io::DmaFileOptions file_options,
                                                       const uint8_t* zeros, uint32_t zeros_bytes);
  // Opens an existing segment and checks its header against `shard`, `id`.
  // `scratch` is an aligned buffer of at least 4096 bytes, borrowed.
  static Task<Result<std::unique_ptr<Segment>>> Open(const std::string& path, uint32_t shard,
                                                     uint64_t id, io::DmaFileOptions file_options,
                                                     uint8_t* scratch);

  uint64_t id() const noexcept { return header_.segment_id; }
  const std::string& path() const noexcept { return file_.path(); }
  const io::DmaFile& file() const noexcept { return file_; }
  uint64_t size_bytes() const noexcept { return header_.segment_size_bytes; }
  uint32_t alignment_bytes() const noexcept { return header_.write_alignment_bytes; }
  // Whether its writer marked the first record of each flush
  // (format::kRecordFlagFlushStart); false for version-1 segments.
  bool marks_flush_starts() const noexcept {
    return header_.format_version >= format::kFormatVersionFlushStart;
  }
  // Records start here: the header occupies the first aligned block.
  uint64_t data_start_bytes() const noexcept { return header_.write_alignment_bytes; }

  // Bytes the file really has, at most size_bytes().
  uint64_t file_size_bytes = 0;
  // The end of durable data (aligned); maintained by recovery and the writer.
  uint64_t end_bytes = 0;
  // Sequence numbers of the first and last records (0 when empty).
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;

 private:
  Segment(io::DmaFile file, SegmentHeader header) : file_(std::move(file)), header_(header) {}
  io::DmaFile file_;
  SegmentHeader header_;
};

// The value of the record `entry` names (for `key`), from the aligned read
// `read` of `segment`'s bytes starting at `read_offset_bytes`: the record's
// checksum, key and sequence are checked, and a damaged record is
// Corruption naming the segment and offset. Builds error text only on an
// error: a get costs no allocation but the value's.
Result<std::string> RecordValueFromRead(const Segment& segment, const IndexEntry& entry,
                                        std::string_view key, std::span<const uint8_t> read,
                                        uint64_t read_offset_bytes);

}  // namespace dmalog::engine

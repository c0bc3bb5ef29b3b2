// Encoding and decoding of records and segment headers (see engine/format.h
// and docs/format.md). Pure functions over byte spans: no I/O, no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "dmalog/status.h"
#include "engine/format.h"

namespace dmalog::engine {

// Bytes a record with these lengths occupies on disk, header included.
constexpr size_t EncodedRecordBytes(size_t key_bytes, size_t value_bytes) {
  return format::kRecordHeaderBytes + key_bytes + value_bytes;
}

// InvalidArgument naming the limit when a key or value is too large.
Status CheckKeyValueLimits(std::string_view key, std::string_view value);

// Writes one record into the front of `dst` and returns the bytes written.
// `dst` must hold EncodedRecordBytes(key.size(), value.size()) bytes; the
// caller has checked the limits (asserted here).
// `flags` is 0 or format::kRecordFlagFlushStart (the first record of a flush).
size_t EncodeRecord(std::span<uint8_t> dst, uint64_t segment_id, format::RecordType type,
                    uint64_t sequence, std::string_view key, std::string_view value,
                    uint8_t flags = 0);

// Writes a padding record of exactly `dst.size()` bytes, which must be at
// least kRecordHeaderBytes. Padding bytes are zero.
void EncodePadding(std::span<uint8_t> dst, uint64_t segment_id);
// Fills `dst`, the rest of an alignment block after the last record, so
// that readers skip it: a padding record when a header fits, else zeros
// (which the reader skips by rounding up to the alignment).
void EncodeGap(std::span<uint8_t> dst, uint64_t segment_id);
// Writes a close record (format::kCloseType, kRecordHeaderBytes long) into
// `dst`, carrying `last_sequence` and `flags` (format::kRecordFlagFlushStart
// in a segment that marks flush starts: the close record is a flush of its
// own).
void EncodeClose(std::span<uint8_t> dst, uint64_t segment_id, uint64_t last_sequence,
                 uint8_t flags);

// A decoded record; the views point into the decoded span.
struct RecordView {
  format::RecordType type = format::kZeroType;
  uint64_t sequence = 0;
  std::string_view key;
  std::string_view value;  // For kBatchType, the batch payload.
  uint32_t encoded_bytes = 0;
  uint8_t flags = 0;  // format::kRecordFlag*.
  bool starts_flush() const noexcept { return (flags & format::kRecordFlagFlushStart) != 0; }
};

enum class DecodeOutcome : uint8_t {
  kRecord,       // A record whose checksum verifies.
  kZero,         // An all-zero header: space never written.
  kTruncated,    // The span ends before the record does.
  kBadChecksum,  // Lengths are plausible but the checksum does not verify.
  kBadHeader,    // Lengths out of range or an unknown mandatory type.
};
const char* DecodeOutcomeName(DecodeOutcome outcome) noexcept;

struct DecodeResult {
  DecodeOutcome outcome;
  RecordView record;  // Valid when outcome == kRecord.
  // kBadChecksum: the record's size by its own header (which may be the
  // damaged part); 0 otherwise.
  uint32_t claimed_bytes = 0;
};

// Decodes the record at the front of `src`, written into segment `segment_id`.
DecodeResult DecodeRecord(std::span<const uint8_t> src, uint64_t segment_id);

// OK when this build reads format `version`; else Unsupported naming
// `where` (a file) and the versions it reads.
Status CheckFormatVersion(uint32_t version, std::string_view where);

// ---- Segment header.
struct SegmentHeader {
  uint32_t format_version = format::kFormatVersion;
  uint32_t shard = 0;
  uint64_t segment_id = 0;
  uint32_t write_alignment_bytes = 0;
  uint64_t segment_size_bytes = 0;
};

// Writes the encoded header into the front of `dst`, which holds at least
// kSegmentHeaderEncodedBytes; returns the bytes written.
size_t EncodeSegmentHeader(std::span<uint8_t> dst, const SegmentHeader& header);

// Decodes and validates a header. `path` names the file in errors.
Result<SegmentHeader> DecodeSegmentHeader(std::span<const uint8_t> src, std::string_view path);

// ---- Batch payload.
struct BatchEntry {
  format::RecordType type;  // kPutType or kDeleteType.
  std::string_view key;
  std::string_view value;
};

// Walks a batch payload. Every entry is bounds-checked; a malformed payload
// (which can only reach here with a verified checksum through a bug or a
// hash collision) ends the walk with Corruption.
class BatchReader {
 public:
  explicit BatchReader(std::string_view payload);
  // Number of entries the payload declares, or an error if malformed.
  Result<uint32_t> Count() const;
  // The next entry, NotFound at the end, Corruption when malformed.
  Result<BatchEntry> Next();

 private:
  std::string_view payload_;
  size_t offset_bytes_;
  uint32_t remaining_;
  bool header_ok_;
};

// Routes a key to a shard: XXH3 of the key, or of the part inside the first
// "{...}" when that part is non-empty (a Redis Cluster style hash tag).
uint32_t ShardForKey(std::string_view key, uint32_t shard_count);
std::string_view HashTagOf(std::string_view key);

}  // namespace dmalog::engine

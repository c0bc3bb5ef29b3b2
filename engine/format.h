// dmalog's on-disk format: constants only. docs/format.md is the prose for
// this file; change both together, and bump kFormatVersion on any change to
// the bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmalog::format {

// Version 2 added kRecordFlagFlushStart. A reader accepts segments and
// manifests from kFormatVersionMin to kFormatVersion; a version-1 segment
// has no flush-start flags (docs/format.md, "Recovery classification").
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kFormatVersionMin = 1;
static_assert(kFormatVersionMin <= kFormatVersion);

// ---- Segment header: the first block of every segment file.
// magic(8) version(4) shard(4) segment_id(8) write_alignment(4)
// reserved(4) segment_size(8) checksum(8) = 48 bytes, then zeros up to the
// segment's write alignment so that records start on an aligned offset.
inline constexpr char kSegmentMagic[8] = {'D', 'M', 'A', 'L', 'O', 'G', 'S', 'G'};
inline constexpr size_t kSegmentHeaderEncodedBytes = 48;
inline constexpr size_t kSegmentHeaderChecksumOffset = 40;

// ---- Record header.
// checksum(8) sequence(8) value_len(4) key_len(2) type(1) flags(1) = 24 bytes,
// then key bytes, then value bytes. The checksum is XXH3-64 over bytes
// [8, 24 + key_len + value_len), seeded with the segment id, so a record left
// over from another segment never verifies here.
inline constexpr size_t kRecordHeaderBytes = 24;
inline constexpr size_t kRecordChecksumOffset = 0;
inline constexpr size_t kRecordSequenceOffset = 8;
inline constexpr size_t kRecordValueLenOffset = 16;
inline constexpr size_t kRecordKeyLenOffset = 20;
inline constexpr size_t kRecordTypeOffset = 22;
inline constexpr size_t kRecordFlagsOffset = 23;

// Record flags. kRecordFlagFlushStart marks the first record of each
// flush (each aligned write), so recovery can tell a flush whose sectors
// were torn out of order (valid records after a hole, none starting a
// flush: the tail) from a lost write in the middle (a later flush starts
// after the hole). Any other bit set is a bad header.
inline constexpr uint8_t kRecordFlagFlushStart = 0x01;
inline constexpr uint8_t kRecordFlagsKnown = kRecordFlagFlushStart;
// The first format version whose writers set kRecordFlagFlushStart.
inline constexpr uint32_t kFormatVersionFlushStart = 2;
static_assert(kFormatVersionFlushStart <= kFormatVersion);

enum RecordType : uint8_t {
  // All-zero header: preallocated space that was never written.
  kZeroType = 0,
  kPutType = 1,
  kDeleteType = 2,
  // An atomic WriteBatch: the payload is a sequence of sub-records.
  kBatchType = 3,
  // Fills the rest of a flush up to the write alignment; skipped.
  kPaddingType = 4,
  // Types in [kIgnorableTypeMin, kIgnorableTypeMax] may be added by future
  // versions; an older reader skips them when their checksum verifies.
  kIgnorableTypeMin = 64,
  // Written by a clean close after the shard's last flush: no key, no value,
  // the sequence field holds the shard's last sequence. It is valid data
  // after every acknowledged record, so damage to the last acknowledged
  // flush reads as damage in the middle of the log, not as a torn tail
  // (docs/format.md, "Clean close"). Ignorable: readers skip it.
  kCloseType = 64,
  kIgnorableTypeMax = 127,
  // Types above kIgnorableTypeMax are mandatory: an unknown one is an error.
};

// ---- Batch payload: count(4), then per entry
// type(1) key_len(2) value_len(4) key value. Entry i has sequence
// (batch record's sequence + i).
inline constexpr size_t kBatchCountBytes = 4;
inline constexpr size_t kBatchEntryHeaderBytes = 7;

// ---- Limits.
inline constexpr size_t kKeyBytesMax = 4096;
inline constexpr size_t kValueBytesMax = 1u << 20;  // 1 MiB
inline constexpr size_t kBatchEntriesMax = 65536;
inline constexpr size_t kBatchBytesMax = 2u << 20;  // 2 MiB of payload
inline constexpr uint64_t kSegmentSizeBytesMin = 4u << 20;
inline constexpr uint64_t kSegmentSizeBytesDefault = 64u << 20;
inline constexpr uint64_t kSegmentSizeBytesMax = 1ull << 32;
// The largest alignment a device may ask for that dmalog accepts.
inline constexpr uint32_t kWriteAlignmentBytesMax = 64 * 1024;

static_assert(kKeyBytesMax <= UINT16_MAX, "key_len is 16 bits");
static_assert(kValueBytesMax <= UINT32_MAX, "value_len is 32 bits");
static_assert(kBatchBytesMax <= UINT32_MAX, "a batch payload length is 32 bits");
static_assert(kRecordHeaderBytes + kKeyBytesMax + kValueBytesMax < kBatchBytesMax,
              "a single put fits in a batch");
static_assert(kRecordHeaderBytes + kBatchBytesMax + 2 * kWriteAlignmentBytesMax <
                  kSegmentSizeBytesMin,
              "the largest record and a segment header fit in the smallest segment");
static_assert(kSegmentHeaderEncodedBytes <= 512, "the segment header fits in one sector");
static_assert(kSegmentHeaderChecksumOffset + 8 == kSegmentHeaderEncodedBytes);
static_assert(kRecordFlagsOffset + 1 == kRecordHeaderBytes);

}  // namespace dmalog::format

// Hint files: constants only. A hint file ("NNNNNNNN.hint" beside
// "NNNNNNNN.seg") lists, in log order, every put and delete of one SEALED
// segment as the index needs it, so that an open with
// Options::use_hint_files can build the segment's index entries without
// reading the segment. docs/format.md ("Hint files") is the prose for this
// file; change both together and bump kHintFormatVersion on any change to
// the bytes. All integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/format.h"

namespace dmalog::format {

inline constexpr uint32_t kHintFormatVersion = 1;

// ---- Header.
// magic(8) version(4) shard(4) segment_id(8) segment_size(8) end(8)
// first_sequence(8) last_sequence(8) entry_count(4) reserved(4)
// last_record_offset(8) last_record_checksum(8) = 88 bytes.
// `end` is the end of the segment's last record (padding included);
// `last_record_*` name the last put/delete/batch record and the checksum
// field stored in its header (zero when the segment holds none).
inline constexpr char kHintMagic[8] = {'D', 'M', 'A', 'L', 'O', 'G', 'H', 'T'};
inline constexpr size_t kHintHeaderBytes = 88;
inline constexpr size_t kHintVersionOffset = 8;
inline constexpr size_t kHintShardOffset = 12;
inline constexpr size_t kHintSegmentIdOffset = 16;
inline constexpr size_t kHintSegmentSizeOffset = 24;
inline constexpr size_t kHintEndOffset = 32;
inline constexpr size_t kHintFirstSequenceOffset = 40;
inline constexpr size_t kHintLastSequenceOffset = 48;
inline constexpr size_t kHintEntryCountOffset = 56;
inline constexpr size_t kHintReservedOffset = 60;
inline constexpr size_t kHintLastRecordOffsetOffset = 64;
inline constexpr size_t kHintLastRecordChecksumOffset = 72;
inline constexpr size_t kHintHeaderReserved2Offset = 80;  // 8 zero bytes.

// ---- Entry, one per put or delete (a batch record contributes one per
// entry, each with sequence = batch sequence + i and the batch record's
// offset and length).
// sequence(8) record_offset(4) record_bytes(4) key_len(2) type(1)
// reserved(1) = 20 bytes, then key bytes.
inline constexpr size_t kHintEntryHeaderBytes = 20;
inline constexpr size_t kHintEntrySequenceOffset = 0;
inline constexpr size_t kHintEntryRecordOffsetOffset = 8;
inline constexpr size_t kHintEntryRecordBytesOffset = 12;
inline constexpr size_t kHintEntryKeyLenOffset = 16;
inline constexpr size_t kHintEntryTypeOffset = 18;
inline constexpr size_t kHintEntryReservedOffset = 19;

// ---- Trailer: XXH3-64 (unseeded) over every byte before it.
inline constexpr size_t kHintTrailerBytes = 8;

// ---- Limits. A segment with more entries, or whose hint would be larger,
// gets no hint (it is scanned at open, as without hints).
inline constexpr uint32_t kHintEntriesMax = 1u << 22;
inline constexpr uint64_t kHintFileBytesMax = 128ull << 20;

static_assert(kHintHeaderReserved2Offset + 8 == kHintHeaderBytes);
static_assert(kHintLastRecordChecksumOffset + 8 == kHintHeaderReserved2Offset);
static_assert(kHintEntryReservedOffset + 1 == kHintEntryHeaderBytes);
static_assert(kHintEntriesMax <= UINT32_MAX, "entry_count is 32 bits");
static_assert(kSegmentSizeBytesMax <= (1ull << 32), "record offsets in a hint are 32 bits");
static_assert(kHintHeaderBytes + kHintTrailerBytes + kHintEntryHeaderBytes + kKeyBytesMax <=
                  kHintFileBytesMax,
              "a hint of one entry with the largest key fits");
static_assert(kHintHeaderBytes + uint64_t{kHintEntriesMax} * kHintEntryHeaderBytes +
                      kHintTrailerBytes <=
                  kHintFileBytesMax,
              "the most entries fit in the largest hint when their keys are short");

}  // namespace dmalog::format

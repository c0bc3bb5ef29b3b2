#include "engine/record.h"

#include <xxhash.h>

#include <bit>
#include <cassert>
#include <cstring>
#include <string>

#include "engine/coding.h"

namespace dmalog::engine {
namespace {

static_assert(std::endian::native == std::endian::little, "the format is little-endian");

uint64_t RecordChecksum(const uint8_t* record, size_t encoded_bytes, uint64_t segment_id) {
  constexpr size_t kCovered = format::kRecordChecksumOffset + 8;
  return XXH3_64bits_withSeed(record + kCovered, encoded_bytes - kCovered, segment_id);
}

bool IsKnownType(uint8_t type) {
  if (type >= format::kIgnorableTypeMin && type <= format::kIgnorableTypeMax) return true;
  return type >= format::kPutType && type <= format::kPaddingType;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

Status CheckKeyValueLimits(std::string_view key, std::string_view value) {
  if (key.size() > format::kKeyBytesMax) {
    return Status::InvalidArgument(
        "key is " + std::to_string(key.size()) +
        " bytes; the limit is kKeyBytesMax = " + std::to_string(format::kKeyBytesMax) + " bytes");
  }
  if (value.size() > format::kValueBytesMax) {
    return Status::InvalidArgument("value is " + std::to_string(value.size()) +
                                   " bytes; the limit is kValueBytesMax = " +
                                   std::to_string(format::kValueBytesMax) + " bytes");
  }
  return Status::OK();
}

size_t EncodeRecord(std::span<uint8_t> dst, uint64_t segment_id, format::RecordType type,
                    uint64_t sequence, std::string_view key, std::string_view value,
                    uint8_t flags) {
  assert((flags & ~format::kRecordFlagsKnown) == 0);
  assert(key.size() <= format::kKeyBytesMax);
  assert(type == format::kBatchType ? value.size() <= format::kBatchBytesMax
                                    : value.size() <= format::kValueBytesMax);
  const size_t total = EncodedRecordBytes(key.size(), value.size());
  assert(dst.size() >= total);
  uint8_t* p = dst.data();
  Put64(p + format::kRecordSequenceOffset, sequence);
  Put32(p + format::kRecordValueLenOffset, static_cast<uint32_t>(value.size()));
  Put16(p + format::kRecordKeyLenOffset, static_cast<uint16_t>(key.size()));
  p[format::kRecordTypeOffset] = type;
  p[format::kRecordFlagsOffset] = flags;
  if (!key.empty()) std::memcpy(p + format::kRecordHeaderBytes, key.data(), key.size());
  if (!value.empty()) {
    std::memcpy(p + format::kRecordHeaderBytes + key.size(), value.data(), value.size());
  }
  Put64(p + format::kRecordChecksumOffset, RecordChecksum(p, total, segment_id));
  return total;
}

void EncodePadding(std::span<uint8_t> dst, uint64_t segment_id) {
  assert(dst.size() >= format::kRecordHeaderBytes);
  const size_t value_bytes = dst.size() - format::kRecordHeaderBytes;
  std::memset(dst.data() + format::kRecordHeaderBytes, 0, value_bytes);
  uint8_t* p = dst.data();
  Put64(p + format::kRecordSequenceOffset, 0);
  Put32(p + format::kRecordValueLenOffset, static_cast<uint32_t>(value_bytes));
  Put16(p + format::kRecordKeyLenOffset, 0);
  p[format::kRecordTypeOffset] = format::kPaddingType;
  p[format::kRecordFlagsOffset] = 0;
  Put64(p + format::kRecordChecksumOffset, RecordChecksum(p, dst.size(), segment_id));
}

void EncodeGap(std::span<uint8_t> dst, uint64_t segment_id) {
  if (dst.size() >= format::kRecordHeaderBytes) {
    EncodePadding(dst, segment_id);
  } else {
    std::memset(dst.data(), 0, dst.size());
  }
}

void EncodeClose(std::span<uint8_t> dst, uint64_t segment_id, uint64_t last_sequence,
                 uint8_t flags) {
  assert((flags & ~format::kRecordFlagsKnown) == 0);
  assert(dst.size() == format::kRecordHeaderBytes);
  uint8_t* p = dst.data();
  Put64(p + format::kRecordSequenceOffset, last_sequence);
  Put32(p + format::kRecordValueLenOffset, 0);
  Put16(p + format::kRecordKeyLenOffset, 0);
  p[format::kRecordTypeOffset] = format::kCloseType;
  p[format::kRecordFlagsOffset] = flags;
  Put64(p + format::kRecordChecksumOffset, RecordChecksum(p, dst.size(), segment_id));
}

const char* DecodeOutcomeName(DecodeOutcome outcome) noexcept {
  switch (outcome) {
    case DecodeOutcome::kRecord:
      return "record";
    case DecodeOutcome::kZero:
      return "unwritten (zero) space";
    case DecodeOutcome::kTruncated:
      return "truncated record";
    case DecodeOutcome::kBadChecksum:
      return "checksum mismatch";
    case DecodeOutcome::kBadHeader:
      return "invalid record header";
  }
  return "unknown";
}

DecodeResult DecodeRecord(std::span<const uint8_t> src, uint64_t segment_id) {
  DecodeResult result{DecodeOutcome::kTruncated, {}};
  if (src.size() < format::kRecordHeaderBytes) return result;
  const uint8_t* p = src.data();
  if (AllZero(p, format::kRecordHeaderBytes)) {
    result.outcome = DecodeOutcome::kZero;
    return result;
  }
  const uint8_t type = p[format::kRecordTypeOffset];
  const size_t key_bytes = Get16(p + format::kRecordKeyLenOffset);
  const size_t value_bytes = Get32(p + format::kRecordValueLenOffset);
  const size_t value_max = type == format::kBatchType || type == format::kPaddingType ||
                                   type >= format::kIgnorableTypeMin
                               ? format::kBatchBytesMax
                               : format::kValueBytesMax;
  if (!IsKnownType(type) || key_bytes > format::kKeyBytesMax || value_bytes > value_max ||
      (p[format::kRecordFlagsOffset] & ~format::kRecordFlagsKnown) != 0) {
    result.outcome = DecodeOutcome::kBadHeader;
    return result;
  }
  const size_t total = EncodedRecordBytes(key_bytes, value_bytes);
  if (src.size() < total) return result;  // kTruncated
  if (Get64(p + format::kRecordChecksumOffset) != RecordChecksum(p, total, segment_id)) {
    result.outcome = DecodeOutcome::kBadChecksum;
    result.claimed_bytes = static_cast<uint32_t>(total);
    return result;
  }
  const char* payload = reinterpret_cast<const char*>(p + format::kRecordHeaderBytes);
  result.outcome = DecodeOutcome::kRecord;
  result.record.type = static_cast<format::RecordType>(type);
  result.record.sequence = Get64(p + format::kRecordSequenceOffset);
  result.record.key = std::string_view(payload, key_bytes);
  result.record.value = std::string_view(payload + key_bytes, value_bytes);
  result.record.encoded_bytes = static_cast<uint32_t>(total);
  result.record.flags = p[format::kRecordFlagsOffset];
  return result;
}

Status CheckFormatVersion(uint32_t version, std::string_view where) {
  if (version >= format::kFormatVersionMin && version <= format::kFormatVersion)
    return Status::OK();
  return Status::Unsupported(std::string(where) + ": format version " + std::to_string(version) +
                             "; this build reads versions " +
                             std::to_string(format::kFormatVersionMin) + " to " +
                             std::to_string(format::kFormatVersion));
}

size_t EncodeSegmentHeader(std::span<uint8_t> dst, const SegmentHeader& header) {
  assert(dst.size() >= format::kSegmentHeaderEncodedBytes);
  uint8_t* p = dst.data();
  std::memcpy(p, format::kSegmentMagic, sizeof(format::kSegmentMagic));
  Put32(p + 8, header.format_version);
  Put32(p + 12, header.shard);
  Put64(p + 16, header.segment_id);
  Put32(p + 24, header.write_alignment_bytes);
  Put32(p + 28, 0);
  Put64(p + 32, header.segment_size_bytes);
  Put64(p + format::kSegmentHeaderChecksumOffset,
        XXH3_64bits(p, format::kSegmentHeaderChecksumOffset));
  return format::kSegmentHeaderEncodedBytes;
}

Result<SegmentHeader> DecodeSegmentHeader(std::span<const uint8_t> src, std::string_view path) {
  const std::string where = "segment " + std::string(path) + " header at offset 0";
  if (src.size() < format::kSegmentHeaderEncodedBytes) {
    return Status::Corruption(where + ": file is shorter than a segment header");
  }
  const uint8_t* p = src.data();
  if (std::memcmp(p, format::kSegmentMagic, sizeof(format::kSegmentMagic)) != 0) {
    return Status::Corruption(where + ": bad magic (not a dmalog segment)");
  }
  if (Get64(p + format::kSegmentHeaderChecksumOffset) !=
      XXH3_64bits(p, format::kSegmentHeaderChecksumOffset)) {
    return Status::Corruption(where + ": checksum mismatch");
  }
  SegmentHeader h;
  h.format_version = Get32(p + 8);
  h.shard = Get32(p + 12);
  h.segment_id = Get64(p + 16);
  h.write_alignment_bytes = Get32(p + 24);
  h.segment_size_bytes = Get64(p + 32);
  Status version = CheckFormatVersion(h.format_version, where);
  if (!version.ok()) return version;
  const uint32_t align = h.write_alignment_bytes;
  if (align < 512 || align > format::kWriteAlignmentBytesMax || (align & (align - 1)) != 0 ||
      h.segment_size_bytes < format::kSegmentSizeBytesMin ||
      h.segment_size_bytes > format::kSegmentSizeBytesMax || h.segment_size_bytes % align != 0) {
    return Status::Corruption(where + ": implausible alignment or segment size");
  }
  return h;
}

BatchReader::BatchReader(std::string_view payload)
    : payload_(payload), offset_bytes_(format::kBatchCountBytes), remaining_(0), header_ok_(false) {
  if (payload_.size() >= format::kBatchCountBytes) {
    remaining_ = Get32(reinterpret_cast<const uint8_t*>(payload_.data()));
    header_ok_ = remaining_ <= format::kBatchEntriesMax;
  }
}

Result<uint32_t> BatchReader::Count() const {
  if (!header_ok_) return Status::Corruption("batch payload: bad entry count");
  return remaining_;
}

Result<BatchEntry> BatchReader::Next() {
  if (!header_ok_) return Status::Corruption("batch payload: bad entry count");
  if (remaining_ == 0) {
    if (offset_bytes_ != payload_.size()) {
      return Status::Corruption("batch payload: trailing bytes after the last entry");
    }
    return Status::NotFound("end of batch");
  }
  if (payload_.size() - offset_bytes_ < format::kBatchEntryHeaderBytes) {
    return Status::Corruption("batch payload: entry header past the end");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(payload_.data()) + offset_bytes_;
  const uint8_t type = p[0];
  const size_t key_bytes = Get16(p + 1);
  const size_t value_bytes = Get32(p + 3);
  const size_t entry_bytes = format::kBatchEntryHeaderBytes + key_bytes + value_bytes;
  if ((type != format::kPutType && type != format::kDeleteType) ||
      key_bytes > format::kKeyBytesMax || value_bytes > format::kValueBytesMax ||
      payload_.size() - offset_bytes_ < entry_bytes) {
    return Status::Corruption("batch payload: malformed entry at byte " +
                              std::to_string(offset_bytes_));
  }
  const char* key = payload_.data() + offset_bytes_ + format::kBatchEntryHeaderBytes;
  offset_bytes_ += entry_bytes;
  --remaining_;
  return BatchEntry{static_cast<format::RecordType>(type), std::string_view(key, key_bytes),
                    std::string_view(key + key_bytes, value_bytes)};
}

std::string_view HashTagOf(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint32_t ShardForKey(std::string_view key, uint32_t shard_count) {
  assert(shard_count > 0);
  const std::string_view tag = HashTagOf(key);
  return static_cast<uint32_t>(XXH3_64bits(tag.data(), tag.size()) % shard_count);
}

}  // namespace dmalog::engine

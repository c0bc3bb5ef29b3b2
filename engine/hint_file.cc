#include "engine/hint_file.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>

#include "engine/aligned.h"
#include "engine/coding.h"
#include "engine/log_writer.h"
#include "engine/segment_scanner.h"

namespace dmalog::engine {
namespace {

constexpr char kHintSuffix[] = ".hint";
constexpr char kHintTmpSuffix[] = ".hint.tmp";

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

bool IsZero(std::span<const uint8_t> bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

void EncodeHeader(uint8_t* p, const HintHeader& h, uint32_t entries) {
  std::memset(p, 0, format::kHintHeaderBytes);
  std::memcpy(p, format::kHintMagic, sizeof(format::kHintMagic));
  Put32(p + format::kHintVersionOffset, format::kHintFormatVersion);
  Put32(p + format::kHintShardOffset, h.shard);
  Put64(p + format::kHintSegmentIdOffset, h.segment_id);
  Put64(p + format::kHintSegmentSizeOffset, h.segment_size_bytes);
  Put64(p + format::kHintEndOffset, h.end_bytes);
  Put64(p + format::kHintFirstSequenceOffset, h.first_sequence);
  Put64(p + format::kHintLastSequenceOffset, h.last_sequence);
  Put32(p + format::kHintEntryCountOffset, entries);
  Put64(p + format::kHintLastRecordOffsetOffset, h.last_record_offset_bytes);
  Put64(p + format::kHintLastRecordChecksumOffset, h.last_record_checksum);
}

// Checks of the entries against each other and the header.
Status CheckEntries(const DecodedHint& d, const std::string& where) {
  const HintHeader& h = d.header;
  if (d.entries.empty()) {
    if (h.first_sequence != 0 || h.last_sequence != 0 || h.last_record_offset_bytes != 0 ||
        h.last_record_checksum != 0) {
      return Status::Corruption(where + ": a hint without entries names records");
    }
    return Status::OK();
  }
  uint64_t previous_sequence = 0;
  uint32_t previous_offset = 0;
  for (const HintEntry& e : d.entries) {
    if (e.sequence <= previous_sequence) {
      return Status::Corruption(where + ": sequence " + std::to_string(e.sequence) +
                                " is not above the previous entry's");
    }
    if (e.record_offset_bytes < previous_offset) {
      return Status::Corruption(where + ": record offsets are out of log order");
    }
    if (e.record_offset_bytes < format::kSegmentHeaderEncodedBytes ||
        e.record_bytes < format::kRecordHeaderBytes ||
        uint64_t{e.record_offset_bytes} + e.record_bytes > h.end_bytes) {
      return Status::Corruption(where + ": a record lies outside the segment's data");
    }
    previous_sequence = e.sequence;
    previous_offset = e.record_offset_bytes;
  }
  if (d.entries.front().sequence != h.first_sequence ||
      d.entries.back().sequence != h.last_sequence) {
    return Status::Corruption(where + ": first/last sequence disagree with the entries");
  }
  if (h.last_record_offset_bytes != d.entries.back().record_offset_bytes) {
    return Status::Corruption(where + ": the last record is not the last entry's record");
  }
  return Status::OK();
}

}  // namespace

std::string HintFileName(uint64_t segment_id) {
  std::string name = SegmentFileName(segment_id);
  const size_t dot = name.rfind('.');
  assert(dot != std::string::npos);
  return name.substr(0, dot) + kHintSuffix;
}

std::optional<uint64_t> ParseHintFileName(const std::string& name) {
  if (!EndsWith(name, kHintSuffix)) return std::nullopt;
  const std::string stem = name.substr(0, name.size() - std::strlen(kHintSuffix));
  std::optional<uint64_t> id = ParseSegmentFileName(stem + ".seg");
  if (!id || HintFileName(*id) != name) return std::nullopt;
  return id;
}

bool IsTemporaryHintFileName(const std::string& name) { return EndsWith(name, kHintTmpSuffix); }

HintEncoder::HintEncoder() { bytes_.resize(format::kHintHeaderBytes); }

bool HintEncoder::Add(const HintEntry& e) {
  assert(e.type == format::kPutType || e.type == format::kDeleteType);
  assert(e.key.size() <= format::kKeyBytesMax);
  const size_t add = format::kHintEntryHeaderBytes + e.key.size();
  if (entries_ >= format::kHintEntriesMax ||
      bytes_.size() + add + format::kHintTrailerBytes > format::kHintFileBytesMax) {
    return false;
  }
  uint8_t h[format::kHintEntryHeaderBytes] = {};
  Put64(h + format::kHintEntrySequenceOffset, e.sequence);
  Put32(h + format::kHintEntryRecordOffsetOffset, e.record_offset_bytes);
  Put32(h + format::kHintEntryRecordBytesOffset, e.record_bytes);
  Put16(h + format::kHintEntryKeyLenOffset, static_cast<uint16_t>(e.key.size()));
  h[format::kHintEntryTypeOffset] = e.type;
  bytes_.append(reinterpret_cast<const char*>(h), sizeof(h));
  bytes_.append(e.key);
  ++entries_;
  return true;
}

std::string HintEncoder::Finish(const HintHeader& header) {
  EncodeHeader(reinterpret_cast<uint8_t*>(bytes_.data()), header, entries_);
  uint8_t trailer[format::kHintTrailerBytes];
  Put64(trailer, XXH3_64bits(bytes_.data(), bytes_.size()));
  bytes_.append(reinterpret_cast<const char*>(trailer), sizeof(trailer));
  return std::move(bytes_);
}

std::string EncodeHint(const HintHeader& header, std::span<const HintEntry> entries) {
  HintEncoder encoder;
  for (const HintEntry& e : entries) {
    const bool added = encoder.Add(e);
    assert(added && "EncodeHint: entries beyond the hint limits");
    (void)added;
  }
  return encoder.Finish(header);
}

Result<DecodedHint> DecodeHint(std::span<const uint8_t> bytes, std::string_view path) {
  const std::string where = "hint file " + std::string(path);
  if (bytes.size() < format::kHintHeaderBytes + format::kHintTrailerBytes ||
      bytes.size() > format::kHintFileBytesMax) {
    return Status::Corruption(where + ": " + std::to_string(bytes.size()) +
                              " bytes is outside the sizes a hint can have");
  }
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, format::kHintMagic, sizeof(format::kHintMagic)) != 0) {
    return Status::Corruption(where + ": bad magic (not a dmalog hint file)");
  }
  const size_t body = bytes.size() - format::kHintTrailerBytes;
  if (XXH3_64bits(p, body) != Get64(p + body)) {
    return Status::Corruption(where + ": the trailer checksum does not verify");
  }
  const uint32_t version = Get32(p + format::kHintVersionOffset);
  if (version != format::kHintFormatVersion) {
    return Status::Unsupported(where + ": hint format version " + std::to_string(version) +
                               "; this build reads version " +
                               std::to_string(format::kHintFormatVersion));
  }
  if (Get32(p + format::kHintReservedOffset) != 0 ||
      Get64(p + format::kHintHeaderReserved2Offset) != 0) {
    return Status::Corruption(where + ": reserved header fields are not zero");
  }
  DecodedHint d;
  HintHeader& h = d.header;
  h.shard = Get32(p + format::kHintShardOffset);
  h.segment_id = Get64(p + format::kHintSegmentIdOffset);
  h.segment_size_bytes = Get64(p + format::kHintSegmentSizeOffset);
  h.end_bytes = Get64(p + format::kHintEndOffset);
  h.first_sequence = Get64(p + format::kHintFirstSequenceOffset);
  h.last_sequence = Get64(p + format::kHintLastSequenceOffset);
  h.last_record_offset_bytes = Get64(p + format::kHintLastRecordOffsetOffset);
  h.last_record_checksum = Get64(p + format::kHintLastRecordChecksumOffset);
  const uint32_t count = Get32(p + format::kHintEntryCountOffset);
  if (h.segment_size_bytes < format::kSegmentSizeBytesMin ||
      h.segment_size_bytes > format::kSegmentSizeBytesMax || h.end_bytes > h.segment_size_bytes ||
      h.segment_id > UINT32_MAX) {
    return Status::Corruption(where + ": segment id, size or end out of range");
  }
  if (count > format::kHintEntriesMax ||
      count > (body - format::kHintHeaderBytes) / format::kHintEntryHeaderBytes) {
    return Status::Corruption(where + ": " + std::to_string(count) +
                              " entries cannot fit in the file");
  }
  d.entries.reserve(count);
  size_t offset = format::kHintHeaderBytes;
  for (uint32_t i = 0; i < count; ++i) {
    if (body - offset < format::kHintEntryHeaderBytes) {
      return Status::Corruption(where + ": entry " + std::to_string(i) + " is truncated");
    }
    const uint8_t* e = p + offset;
    HintEntry entry;
    const uint8_t type = e[format::kHintEntryTypeOffset];
    const size_t key_bytes = Get16(e + format::kHintEntryKeyLenOffset);
    if ((type != format::kPutType && type != format::kDeleteType) ||
        e[format::kHintEntryReservedOffset] != 0 || key_bytes > format::kKeyBytesMax ||
        body - offset - format::kHintEntryHeaderBytes < key_bytes) {
      return Status::Corruption(where + ": entry " + std::to_string(i) + " is malformed");
    }
    entry.type = static_cast<format::RecordType>(type);
    entry.sequence = Get64(e + format::kHintEntrySequenceOffset);
    entry.record_offset_bytes = Get32(e + format::kHintEntryRecordOffsetOffset);
    entry.record_bytes = Get32(e + format::kHintEntryRecordBytesOffset);
    entry.key = std::string_view(reinterpret_cast<const char*>(e + format::kHintEntryHeaderBytes),
                                 key_bytes);
    d.entries.push_back(entry);
    offset += format::kHintEntryHeaderBytes + key_bytes;
  }
  if (offset != body) return Status::Corruption(where + ": bytes after the last entry");
  Status s = CheckEntries(d, where);
  if (!s.ok()) return s;
  return d;
}

// ---- Recovery's side.

Status RemoveHintDurably(const io::Directory& dir, uint64_t segment_id) {
  const std::string path = dir.path() + "/" + HintFileName(segment_id);
  Result<bool> exists = io::PathExists(path);
  if (!exists.ok()) return exists.status();
  if (!*exists) return Status::OK();
  return io::RemoveFileDurably(path);
}

Result<std::vector<uint64_t>> TidyHintFiles(const io::Directory& dir,
                                            const std::vector<std::string>& names,
                                            const std::vector<uint64_t>& segment_ids) {
  const absl::flat_hash_set<uint64_t> segments(segment_ids.begin(), segment_ids.end());
  std::vector<uint64_t> hinted;
  for (const std::string& name : names) {
    std::optional<uint64_t> id = ParseHintFileName(name);
    const bool orphan = id && !segments.contains(*id);
    if (IsTemporaryHintFileName(name) || orphan) {
      // A hint a crash interrupted, or one whose segment is gone.
      Status s = io::RemoveFileDurably(dir.path() + "/" + name);
      if (!s.ok()) return s;
    } else if (id) {
      hinted.push_back(*id);
    }
  }
  return hinted;
}

namespace {

// One aligned block of `segment` at `offset` (aligned); an empty span past
// the end of the file.
Task<Result<std::span<const uint8_t>>> ReadBlock(const Segment& segment, uint8_t* block,
                                                 uint64_t offset) {
  io::IoAwaitable read = segment.file().Read(block, segment.alignment_bytes(), offset);
  Status s = co_await read;
  if (!s.ok()) co_return s;
  co_return std::span<const uint8_t>(block, read.done_bytes());
}

// The first record of `next` must continue the sequence where the hint ends
// (`block` holds one of next's alignment blocks).
Task<Status> CheckContinued(const DecodedHint& d, const Segment& next, uint8_t* block,
                            uint64_t previous_last_sequence) {
  Result<std::span<const uint8_t>> bytes = co_await ReadBlock(next, block, next.data_start_bytes());
  if (!bytes.ok()) co_return bytes.status();
  bool continued = false;
  if (bytes->size() >= format::kRecordHeaderBytes) {
    const uint8_t type = (*bytes)[format::kRecordTypeOffset];
    const uint64_t sequence = Get64(bytes->data() + format::kRecordSequenceOffset);
    continued = type >= format::kPutType && type <= format::kBatchType &&
                (d.entries.empty() ? sequence > previous_last_sequence
                                   : sequence == d.header.last_sequence + 1);
  }
  if (!continued) {
    co_return Status::Corruption(
        "the next segment does not start with the sequence after the hint's last (the segment "
        "may be the log's tail)");
  }
  co_return Status::OK();
}

// The checks of a decoded hint against its segment and the next one,
// reading three blocks.
Task<Status> CheckAgainstSegment(const DecodedHint& d, uint32_t shard, const Segment& segment,
                                 const Segment* next, uint64_t previous_last_sequence) {
  const HintHeader& h = d.header;
  const uint32_t align = segment.alignment_bytes();
  if (next == nullptr)
    co_return Status::Corruption("the last segment of a shard is always scanned");
  if (h.shard != shard || h.segment_id != segment.id() ||
      h.segment_size_bytes != segment.size_bytes()) {
    co_return Status::Corruption("names another shard, segment or segment size");
  }
  if (h.end_bytes < segment.data_start_bytes() ||
      AlignUp(h.end_bytes, align) > segment.file_size_bytes) {
    co_return Status::Corruption("its end lies outside the segment file");
  }
  for (const HintEntry& e : d.entries) {
    if (e.record_offset_bytes < segment.data_start_bytes()) {
      co_return Status::Corruption("an entry points into the segment header");
    }
  }
  if (!d.entries.empty() && h.first_sequence <= previous_last_sequence) {
    co_return Status::Corruption("its sequences are not above the previous segment's");
  }
  // Also holds one of `next`'s blocks, whose alignment may be larger (a
  // segment made after an upgrade aligns to the disk's physical block).
  AlignedBuffer block = AllocateAligned(std::max(align, next->alignment_bytes()));
  if (!block) co_return Status::IOError("out of memory checking a hint");
  if (!d.entries.empty()) {
    const uint64_t start = AlignDown(h.last_record_offset_bytes, align);
    Result<std::span<const uint8_t>> bytes = co_await ReadBlock(segment, block.get(), start);
    if (!bytes.ok()) co_return bytes.status();
    const uint64_t at = h.last_record_offset_bytes - start;
    if (bytes->size() < at + format::kRecordHeaderBytes ||
        Get64(bytes->data() + at + format::kRecordChecksumOffset) != h.last_record_checksum) {
      co_return Status::Corruption("the segment's last record is not the one the hint names");
    }
  }
  const uint64_t new_data_at = AlignUp(h.end_bytes, align);
  if (new_data_at < segment.file_size_bytes) {
    Result<std::span<const uint8_t>> bytes = co_await ReadBlock(segment, block.get(), new_data_at);
    if (!bytes.ok()) co_return bytes.status();
    if (bytes->size() < format::kRecordHeaderBytes ||
        !IsZero(bytes->subspan(0, format::kRecordHeaderBytes))) {
      co_return Status::Corruption("the segment holds data after the hint's end");
    }
  }
  co_return co_await CheckContinued(d, *next, block.get(), previous_last_sequence);
}

}  // namespace

Task<std::optional<LoadedHint>> LoadHint(const io::Directory& dir, uint32_t shard,
                                         const Segment& segment, const Segment* next,
                                         uint64_t previous_last_sequence, std::string* why) {
  const std::string path = dir.path() + "/" + HintFileName(segment.id());
  LoadedHint loaded;
  Status s;
  Result<std::string> bytes = io::ReadSmallFile(path, format::kHintFileBytesMax);
  if (bytes.ok()) {
    loaded.bytes = std::make_unique<std::string>(std::move(*bytes));
    loaded.read_bytes = loaded.bytes->size() + 3 * segment.alignment_bytes();
    const auto* p = reinterpret_cast<const uint8_t*>(loaded.bytes->data());
    Result<DecodedHint> decoded = DecodeHint({p, loaded.bytes->size()}, path);
    if (decoded.ok()) {
      loaded.hint = std::move(*decoded);
      s = (co_await CheckAgainstSegment(loaded.hint, shard, segment, next, previous_last_sequence))
              .WithContext(path);
    } else {
      s = decoded.status();
    }
  } else {
    s = bytes.status();
  }
  if (s.ok()) co_return std::move(loaded);
  *why = s.ToString();
  // A failed removal leaves an invalid hint, which the next open rejects
  // again: never a reason to fail the open.
  io::RemoveFileDurably(path).IgnoreError();
  co_return std::nullopt;
}

// ---- The writer's side.

Task<Result<std::string>> BuildHint(uint32_t shard, const Segment& segment, uint8_t* window) {
  const std::string where = "building the hint of segment " + segment.path();
  SegmentScanner scanner(segment, segment.data_start_bytes(), segment.end_bytes, window);
  HintEncoder encoder;
  HintHeader h;
  h.shard = shard;
  h.segment_id = segment.id();
  h.segment_size_bytes = segment.size_bytes();
  uint64_t end = segment.data_start_bytes();
  const uint64_t steps_max = segment.size_bytes() / format::kRecordHeaderBytes + 2;
  for (uint64_t step = 0; step < steps_max; ++step) {
    Result<ScanItem> item = co_await scanner.Peek();
    if (!item.ok()) co_return item.status().WithContext(where);
    if (item->outcome == DecodeOutcome::kZero) break;
    if (item->outcome != DecodeOutcome::kRecord) {
      co_return Status::Corruption(where + ": offset " + std::to_string(item->offset_bytes) + ": " +
                                   DecodeOutcomeName(item->outcome));
    }
    const RecordView r = item->record;
    const uint64_t offset = item->offset_bytes;
    HintEntry e{r.type, r.sequence, static_cast<uint32_t>(offset), r.encoded_bytes, r.key};
    bool fits = true;
    if (r.type == format::kPutType || r.type == format::kDeleteType) {
      fits = encoder.Add(e);
    } else if (r.type == format::kBatchType) {
      BatchReader reader(r.value);
      Result<uint32_t> count = reader.Count();
      if (!count.ok()) co_return count.status().WithContext(where);
      for (uint32_t i = 0; i < *count && fits; ++i) {
        Result<BatchEntry> entry = reader.Next();
        if (!entry.ok()) co_return entry.status().WithContext(where);
        e.type = entry->type;
        e.key = entry->key;
        e.sequence = r.sequence + i;
        fits = encoder.Add(e);
      }
    }
    if (!fits) co_return Status::Corruption(where + ": the segment passes the hint limits");
    if (r.type >= format::kPutType && r.type <= format::kBatchType) {
      Result<std::span<const uint8_t>> header = co_await scanner.Bytes(offset, 8);
      if (!header.ok() || header->size() < 8) co_return Status::IOError(where + ": re-read");
      if (h.first_sequence == 0) h.first_sequence = r.sequence;
      h.last_sequence = e.sequence;
      h.last_record_offset_bytes = offset;
      h.last_record_checksum = Get64(header->data());
    }
    scanner.Advance(r.encoded_bytes);
    end = scanner.position_bytes();
  }
  if (AlignUp(end, segment.alignment_bytes()) != segment.end_bytes) {
    co_return Status::Corruption(where + ": its records end at " + std::to_string(end) +
                                 ", not at its durable end " + std::to_string(segment.end_bytes));
  }
  h.end_bytes = end;
  co_return encoder.Finish(h);
}

HintWriter::HintWriter(uint32_t shard, const io::Directory* dir, LogWriter* writer,
                       const std::vector<uint64_t>& hinted_ids)
    : shard_(shard), dir_(dir), writer_(writer), done_(hinted_ids.begin(), hinted_ids.end()) {}

const Segment* HintWriter::NextUnhinted() const {
  const uint64_t active = writer_->active_segment_id();
  for (const Segment* segment : writer_->Segments()) {
    if (segment->id() >= active) break;
    if (!done_.contains(segment->id())) return segment;
  }
  return nullptr;
}

Task<Status> HintWriter::WriteOne(const Segment& segment) {
  AlignedBuffer window = AllocateAligned(kScanWindowBytes);
  if (!window) co_return Status::IOError("out of memory allocating the hint scan window");
  Result<std::string> hint = co_await BuildHint(shard_, segment, window.get());
  if (!hint.ok()) co_return hint.status();
  co_return co_await io::WriteFileDurablyOnRing(*dir_, HintFileName(segment.id()), *hint);
}

Task<void> HintWriter::Loop() {
  spawned_ = true;
  return Run();
}

Task<void> HintWriter::Run() {
  // Bounded by the writer stopping; each pass writes one hint or waits for
  // a roll.
  while (!writer_->stopping()) {
    const Segment* segment = NextUnhinted();
    if (segment == nullptr) {
      co_await writer_->WaitForRoll();
      continue;
    }
    // Every segment below the active one is sealed; Sync makes its last
    // flush durable (a read-only writer gets no more hints).
    if (!(co_await writer_->Sync()).ok()) break;
    done_.insert(segment->id());
    Status s = co_await WriteOne(*segment);
    if (s.ok()) {
      ++stats_.written;
    } else if (++stats_.failures == 1) {
      std::fprintf(stderr,
                   "dmalog: shard %u: no hint file for %s (%s); hints only speed up opening, "
                   "the segment is scanned instead (further failures are only counted)\n",
                   shard_, segment->path().c_str(), s.ToString().c_str());
    }
  }
  loop_done_ = true;
  stopped_.NotifyAll();
}

Task<void> HintWriter::Stop() {
  // Bounded: the loop ends once the writer has stopped.
  while (spawned_ && !loop_done_) co_await stopped_.Wait();
}

}  // namespace dmalog::engine

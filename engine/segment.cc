#include "engine/segment.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>

namespace dmalog::engine {
namespace {
constexpr size_t kSegmentNameDigits = 8;
constexpr const char* kSegmentSuffix = ".seg";
constexpr const char* kTempSuffix = ".tmp";
// Header reads use this many bytes (at least the largest write alignment
// the header may declare is not needed: the header itself is 48 bytes).
constexpr uint32_t kHeaderReadBytes = 4096;
}  // namespace

std::string SegmentFileName(uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof(name), "%0*llu%s", static_cast<int>(kSegmentNameDigits),
                static_cast<unsigned long long>(id), kSegmentSuffix);
  return name;
}

bool IsTemporarySegmentFileName(const std::string& name) {
  const std::string suffix = std::string(kSegmentSuffix) + kTempSuffix;
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::optional<uint64_t> ParseSegmentFileName(const std::string& name) {
  const size_t suffix = std::strlen(kSegmentSuffix);
  if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSegmentSuffix) != 0) {
    return std::nullopt;
  }
  uint64_t id = 0;
  for (size_t i = 0; i < name.size() - suffix; ++i) {
    if (name[i] < '0' || name[i] > '9' || i >= 19) return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return id;
}

Task<Result<std::unique_ptr<Segment>>> Segment::Create(const io::Directory& dir, uint32_t shard,
                                                       uint64_t id, uint64_t size_bytes,
                                                       io::DmaFileOptions file_options,
                                                       const uint8_t* zeros, uint32_t zeros_bytes) {
  // Built under a temporary name and renamed into place only once its
  // header is durable, so a crash never leaves a headerless segment.
  const std::string path = dir.path() + "/" + SegmentFileName(id);
  const std::string tmp_path = path + kTempSuffix;
  io::DmaFileOptions create_options = file_options;
  create_options.create = true;
  create_options.truncate = true;
  create_options.read_only = false;
  Result<io::DmaFile> file = io::DmaFile::Open(tmp_path, create_options);
  if (!file.ok()) co_return file.status();
  static_assert(io::kWriteAlignmentBytesMax <= format::kWriteAlignmentBytesMax);
  const uint32_t align = file->write_alignment_bytes();
  if (align > format::kWriteAlignmentBytesMax || size_bytes % align != 0 ||
      zeros_bytes % align != 0 || zeros_bytes < align) {
    co_return Status::InvalidArgument(path + ": the device asks for " + std::to_string(align) +
                                      "-byte alignment, which the segment size " +
                                      std::to_string(size_bytes) + " does not fit");
  }
  // Zero-fill (see the class comment): one write per `zeros_bytes` chunk.
  for (uint64_t off = align; off < size_bytes; off += zeros_bytes) {
    const uint64_t n = std::min<uint64_t>(zeros_bytes, size_bytes - off);
    Status s = co_await file->Write(zeros, n, off);
    if (!s.ok()) co_return s.WithContext("preallocating segment");
  }
  SegmentHeader header;
  header.shard = shard;
  header.segment_id = id;
  header.write_alignment_bytes = align;
  header.segment_size_bytes = size_bytes;
  std::unique_ptr<uint8_t, decltype(&std::free)> block(
      static_cast<uint8_t*>(std::aligned_alloc(4096, std::max<uint32_t>(align, 4096))), &std::free);
  if (!block) co_return Status::IOError("out of memory allocating a header block");
  std::memset(block.get(), 0, align);
  EncodeSegmentHeader(std::span<uint8_t>(block.get(), align), header);
  Status s = co_await file->WriteDurable(block.get(), align, 0);
  if (!s.ok()) co_return s.WithContext("writing the segment header");
  s = file->Close();
  if (!s.ok()) co_return s;
  s = io::RenameFile(tmp_path, path);
  if (!s.ok()) co_return s;
  s = co_await dir.Sync();
  if (!s.ok()) co_return s.WithContext("making segment " + path + " durable");
  io::DmaFileOptions open_options = file_options;
  open_options.create = false;
  open_options.truncate = false;
  file = io::DmaFile::Open(path, open_options);
  if (!file.ok()) co_return file.status();
  auto segment = std::unique_ptr<Segment>(new Segment(std::move(*file), header));
  segment->end_bytes = segment->data_start_bytes();
  segment->file_size_bytes = size_bytes;
  co_return std::move(segment);
}

Task<Result<std::unique_ptr<Segment>>> Segment::Open(const std::string& path, uint32_t shard,
                                                     uint64_t id, io::DmaFileOptions file_options,
                                                     uint8_t* scratch) {
  file_options.create = false;
  file_options.truncate = false;
  Result<io::DmaFile> file = io::DmaFile::Open(path, file_options);
  if (!file.ok()) co_return file.status();
  io::IoAwaitable read = file->Read(scratch, kHeaderReadBytes, 0);
  Status s = co_await read;
  if (!s.ok()) co_return s.WithContext("reading the segment header");
  Result<SegmentHeader> header =
      DecodeSegmentHeader(std::span<const uint8_t>(scratch, read.done_bytes()), path);
  if (!header.ok()) co_return header.status();
  if (header->shard != shard || header->segment_id != id) {
    co_return Status::Corruption(
        "segment " + path + " header at offset 0: it says shard " + std::to_string(header->shard) +
        " segment " + std::to_string(header->segment_id) + ", but its place says shard " +
        std::to_string(shard) + " segment " + std::to_string(id) + ": was it moved by hand?");
  }
  if (header->write_alignment_bytes % file->offset_alignment_bytes() != 0) {
    co_return Status::Unsupported(
        "segment " + path + " was written with " + std::to_string(header->write_alignment_bytes) +
        "-byte alignment; this device needs " + std::to_string(file->offset_alignment_bytes()));
  }
  Result<uint64_t> size = file->SizeBytes();
  if (!size.ok()) co_return size.status();
  // A file shorter than its header says (cut by a tool or a crash while it
  // was being extended) reads as unwritten space past its end; recovery
  // decides what that means.
  auto segment = std::unique_ptr<Segment>(new Segment(std::move(*file), *header));
  segment->file_size_bytes = std::min(*size, header->segment_size_bytes);
  segment->end_bytes = segment->data_start_bytes();
  co_return std::move(segment);
}

Result<std::string> RecordValueFromRead(const Segment& segment, const IndexEntry& entry,
                                        std::string_view key, std::span<const uint8_t> read,
                                        uint64_t read_offset_bytes) {
  const auto where = [&] {
    return "segment " + segment.path() + " offset " + std::to_string(entry.offset_bytes);
  };
  assert(entry.offset_bytes >= read_offset_bytes);
  const uint64_t skip = entry.offset_bytes - read_offset_bytes;
  const uint64_t have = read.size() > skip ? read.size() - skip : 0;
  DecodeResult d = DecodeRecord(read.subspan(std::min<uint64_t>(skip, read.size()),
                                             std::min<uint64_t>(have, entry.record_bytes)),
                                segment.id());
  if (d.outcome != DecodeOutcome::kRecord) {
    return Status::Corruption(where() + ": " + DecodeOutcomeName(d.outcome) +
                              " on read: the data on disk is damaged; reopen with "
                              "--recovery_mode=skip_any_corrupted_records to skip damaged "
                              "records");
  }
  if (d.record.type == format::kBatchType) {
    BatchReader reader(d.record.value);
    const uint64_t want = entry.sequence - d.record.sequence;
    // Bounded by the entry's position in the batch.
    for (uint64_t i = 0; i <= want; ++i) {
      Result<BatchEntry> e = reader.Next();
      if (!e.ok()) break;
      if (i == want && e->key == key) return std::string(e->value);
    }
    return Status::Corruption(where() + ": the batch has no entry for the key");
  }
  if (d.record.key != key || d.record.sequence != entry.sequence) {
    return Status::Corruption(where() + ": the record holds another key than the index says");
  }
  return std::string(d.record.value);
}

}  // namespace dmalog::engine

#include "engine/tail_repair.h"

#include <algorithm>
#include <cstring>
#include <span>

#include "engine/aligned.h"
#include "engine/record.h"
#include "engine/segment_scanner.h"

namespace dmalog::engine {

Task<Result<uint64_t>> DirtyEnd(SegmentScanner& scanner, const Segment& segment, uint64_t from) {
  uint64_t dirty_end = from;
  // Bounded by the file: each round moves past the bytes it looked at (a
  // window loaded for an unaligned `from` holds less than its size).
  for (uint64_t at = from; at < segment.file_size_bytes;) {
    Result<std::span<const uint8_t>> bytes = co_await scanner.Bytes(at, kScanWindowBytes);
    if (!bytes.ok()) co_return bytes.status();
    const std::span<const uint8_t> view = *bytes;
    if (view.empty()) break;
    // The last non-zero byte of the window, scanning back from its end.
    size_t k = view.size();
    while (k > 0 && view[k - 1] == 0) --k;
    if (k > 0) dirty_end = at + k;
    at += view.size();
  }
  co_return dirty_end;
}

namespace {

// Keeps the valid prefix of the block holding `valid_end` and pads the rest.
Task<Status> PadLastBlock(SegmentScanner& scanner, Segment& segment, uint64_t valid_end) {
  const uint32_t align = segment.alignment_bytes();
  AlignedBuffer block = AllocateAligned(align);
  if (!block) co_return Status::IOError("out of memory allocating a block to repair the tail");
  const uint64_t block_start = AlignDown(valid_end, align);
  Result<std::span<const uint8_t>> bytes = co_await scanner.Bytes(block_start, align);
  if (!bytes.ok()) co_return bytes.status();
  std::memset(block.get(), 0, align);
  std::memcpy(block.get(), bytes->data(), std::min<size_t>(bytes->size(), valid_end - block_start));
  EncodeGap(std::span<uint8_t>(block.get() + (valid_end - block_start),
                               AlignUp(valid_end, align) - valid_end),
            segment.id());
  Status s = co_await segment.file().Write(block.get(), align, block_start);
  if (!s.ok()) co_return s.WithContext("repairing the torn tail");
  co_return Status::OK();
}

// Copies [from, to) of the segment (at most kDroppedCopyBytesMax) into a
// file beside it; returns the file's path.
Task<Result<std::string>> SaveDropped(const io::Directory& dir, SegmentScanner& scanner,
                                      const Segment& segment, uint64_t from, uint64_t to) {
  std::string copy;
  const uint64_t end = std::min(to, from + kDroppedCopyBytesMax);
  // Bounded by kDroppedCopyBytesMax: each round copies at least one byte.
  for (uint64_t at = from; at < end;) {
    const uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(end - at, kScanWindowBytes / 2));
    Result<std::span<const uint8_t>> bytes = co_await scanner.Bytes(at, want);
    if (!bytes.ok()) co_return bytes.status();
    if (bytes->empty()) break;
    copy.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    at += bytes->size();
  }
  const std::string path = segment.path();
  const std::string base =
      path.substr(path.find_last_of('/') + 1) + ".dropped-" + std::to_string(from);
  // A later repair at the same offset (the next flush torn too) must not
  // replace an earlier copy.
  std::string name = base;
  for (uint32_t n = 2; n <= kDroppedCopiesPerOffsetMax; ++n) {
    Result<bool> taken = io::PathExists(dir.path() + "/" + name);
    if (!taken.ok()) co_return taken.status();
    if (!*taken) break;
    name = base + "-" + std::to_string(n);
  }
  Status s = co_await io::WriteFileDurablyOnRing(dir, name, copy);
  if (!s.ok()) co_return s.WithContext("saving the dropped tail");
  co_return dir.path() + "/" + name;
}

}  // namespace

Task<Result<TailRepair>> ZeroTailAfter(const io::Directory& dir, Segment& segment,
                                       uint64_t valid_end, uint8_t* window, const uint8_t* zeros,
                                       uint32_t zeros_bytes) {
  const uint32_t align = segment.alignment_bytes();
  const uint64_t write_at = AlignUp(valid_end, align);
  SegmentScanner scanner(segment, write_at, segment.file_size_bytes, window);
  Result<uint64_t> dirty_end = co_await DirtyEnd(scanner, segment, valid_end);
  if (!dirty_end.ok()) co_return dirty_end.status();
  TailRepair repair;
  if (*dirty_end > valid_end) {
    repair.dropped_bytes = *dirty_end - valid_end;
    // Best effort: a full disk must not keep the database from opening.
    Result<std::string> saved = co_await SaveDropped(dir, scanner, segment, valid_end, *dirty_end);
    if (saved.ok()) {
      repair.copy_path = std::move(*saved);
    } else {
      repair.copy_error = saved.status().ToString();
    }
  }
  if (valid_end % align != 0) {
    Status s = co_await PadLastBlock(scanner, segment, valid_end);
    if (!s.ok()) co_return s;
  }
  for (uint64_t at = write_at; at < *dirty_end; at += zeros_bytes) {
    const uint64_t n = std::min<uint64_t>(zeros_bytes, AlignUp(*dirty_end, align) - at);
    Status s = co_await segment.file().Write(zeros, n, at);
    if (!s.ok()) co_return s.WithContext("zeroing the torn tail");
  }
  Status s = co_await segment.file().Fdatasync();
  if (!s.ok()) co_return s.WithContext("making the tail repair durable");
  co_return repair;
}

}  // namespace dmalog::engine

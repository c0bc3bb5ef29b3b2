#include "engine/segment_scanner.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "engine/aligned.h"

namespace dmalog::engine {
namespace {

// The index of the first non-zero byte of `bytes`, or bytes.size().
size_t FirstNonZero(std::span<const uint8_t> bytes) noexcept {
  constexpr size_t kWordBytes = sizeof(uint64_t);
  constexpr size_t kStrideBytes = 8 * kWordBytes;  // One cache line per test.
  size_t i = 0;
  for (; i + kStrideBytes <= bytes.size(); i += kStrideBytes) {
    uint64_t any = 0;
    for (size_t w = 0; w < kStrideBytes; w += kWordBytes) {
      uint64_t word;
      std::memcpy(&word, bytes.data() + i + w, kWordBytes);
      any |= word;
    }
    if (any != 0) break;
  }
  for (; i < bytes.size(); ++i) {
    if (bytes[i] != 0) return i;
  }
  return bytes.size();
}

// `view` starts at the aligned offset `at`. Every aligned offset before the
// one returned has an all-zero header (no record); returns `at` itself when
// its header holds a non-zero byte. When the view is zero to its end, the
// first candidate is the first aligned offset whose header reaches past it.
uint64_t NextCandidate(uint64_t at, std::span<const uint8_t> view, uint32_t align) noexcept {
  assert(view.size() >= format::kRecordHeaderBytes && at % align == 0);
  const uint64_t first_nonzero = at + FirstNonZero(view);
  if (first_nonzero - at < format::kRecordHeaderBytes) return at;
  // An aligned offset `a` can start a record only if a + header > first_nonzero.
  return AlignUp(first_nonzero + 1 - format::kRecordHeaderBytes, align);
}

}  // namespace

SegmentScanner::SegmentScanner(const Segment& segment, uint64_t start_bytes, uint64_t limit_bytes,
                               uint8_t* window)
    : segment_(segment),
      limit_bytes_(std::min(limit_bytes, segment.file_size_bytes)),
      window_(window),
      position_bytes_(start_bytes) {
  assert(window != nullptr);
}

uint64_t SegmentScanner::SkipGap(uint64_t offset) const noexcept {
  const uint64_t next = AlignUp(offset, segment_.alignment_bytes());
  return next - offset < format::kRecordHeaderBytes ? next : offset;
}

std::span<const uint8_t> SegmentScanner::View(uint64_t offset_bytes) const noexcept {
  if (offset_bytes < window_start_bytes_ ||
      offset_bytes >= window_start_bytes_ + window_valid_bytes_) {
    return {};
  }
  const uint64_t skip = offset_bytes - window_start_bytes_;
  return std::span<const uint8_t>(window_ + skip, window_valid_bytes_ - skip);
}

Task<Status> SegmentScanner::Load(uint64_t offset_bytes, uint32_t n) {
  const uint64_t want_end = std::min(offset_bytes + n, limit_bytes_);
  if (offset_bytes >= window_start_bytes_ &&
      want_end <= window_start_bytes_ + window_valid_bytes_) {
    co_return Status::OK();
  }
  const uint32_t align = segment_.alignment_bytes();
  const uint64_t start = AlignDown(offset_bytes, align);
  const uint64_t end = std::min<uint64_t>(start + kScanWindowBytes, AlignUp(limit_bytes_, align));
  io::IoAwaitable read = segment_.file().Read(window_, end - start, start);
  Status s = co_await read;
  if (!s.ok()) {
    window_valid_bytes_ = 0;
    co_return s;
  }
  window_start_bytes_ = start;
  // Reads past the end of the file are short; never trust bytes past limit.
  window_valid_bytes_ = std::min<uint64_t>(read.done_bytes(), limit_bytes_ - start);
  co_return Status::OK();
}

Task<Result<std::span<const uint8_t>>> SegmentScanner::Bytes(uint64_t offset_bytes, uint32_t n) {
  Status s = co_await Load(offset_bytes, n);
  if (!s.ok()) co_return s;
  std::span<const uint8_t> view = View(offset_bytes);
  co_return view.first(std::min<size_t>(view.size(), n));
}

Task<Result<ScanItem>> SegmentScanner::Peek() {
  position_bytes_ = SkipGap(position_bytes_);
  const uint64_t at = position_bytes_;
  if (at >= limit_bytes_) co_return ScanItem{DecodeOutcome::kZero, {}, at};
  Status s = co_await Load(at, format::kRecordHeaderBytes);
  if (!s.ok()) co_return s;
  DecodeResult d = DecodeRecord(View(at), segment_.id());
  if (d.outcome == DecodeOutcome::kTruncated &&
      window_start_bytes_ + window_valid_bytes_ < limit_bytes_) {
    // The record runs past the window: reload the window starting here.
    s = co_await Load(at, kScanWindowBytes - segment_.alignment_bytes());
    if (!s.ok()) co_return s;
    d = DecodeRecord(View(at), segment_.id());
  }
  if (d.outcome == DecodeOutcome::kTruncated) d.outcome = ZeroTailOutcome(View(at));
  co_return ScanItem{d.outcome, d.record, at, d.claimed_bytes};
}

Task<Result<std::optional<uint64_t>>> SegmentScanner::FindValidRecordAfter(uint64_t damaged_bytes) {
  Seek(damaged_bytes);
  Result<ScanItem> damaged = co_await Peek();
  if (!damaged.ok()) co_return damaged.status();
  if (damaged->outcome == DecodeOutcome::kBadChecksum) {
    Seek(damaged->offset_bytes + damaged->claimed_bytes);
    Result<ScanItem> next = co_await Peek();
    if (!next.ok()) co_return next.status();
    // A checksum that verifies where the header pointed: the header was
    // intact (a wrong length would point at no record boundary).
    if (next->outcome == DecodeOutcome::kRecord) co_return std::optional(next->offset_bytes);
  }
  co_return co_await FindValidRecordFrom(damaged_bytes + 1);
}

DecodeOutcome SegmentScanner::ZeroTailOutcome(std::span<const uint8_t> view) const noexcept {
  // The file ends less than a record header from here, in zeros: unwritten
  // space (a short file), like a zero header, not a torn record. As a torn
  // record, tolerate_corrupted_tail_records dropped it and found nothing to
  // zero, so absolute_consistency refused the same file afterwards
  // (recovery_fuzz).
  const bool at_file_end = window_start_bytes_ + window_valid_bytes_ >= limit_bytes_;
  if (!at_file_end || view.size() >= format::kRecordHeaderBytes) return DecodeOutcome::kTruncated;
  const bool zeros = std::all_of(view.begin(), view.end(), [](uint8_t b) { return b == 0; });
  return zeros ? DecodeOutcome::kZero : DecodeOutcome::kTruncated;
}

Task<Result<std::optional<uint64_t>>> SegmentScanner::FindFrom(uint64_t from_bytes,
                                                               bool flush_start_only) {
  const uint32_t align = segment_.alignment_bytes();
  // Bounded by the segment's size over its alignment: each round moves `at`
  // forward by at least one alignment block.
  for (uint64_t at = AlignUp(from_bytes, align); at < limit_bytes_;) {
    Status s = co_await Load(at, format::kRecordHeaderBytes);
    if (!s.ok()) co_return s;
    std::span<const uint8_t> view = View(at);
    if (view.size() < format::kRecordHeaderBytes) break;
    // Most of what this searches is preallocated zeros, and a record's
    // header is never all zero: skip to the first aligned offset whose
    // header could hold a non-zero byte, without decoding each block.
    const uint64_t next = NextCandidate(at, view, align);
    if (next != at) {
      at = next;
      continue;
    }
    DecodeResult d = DecodeRecord(view, segment_.id());
    if (d.outcome == DecodeOutcome::kTruncated &&
        window_start_bytes_ + window_valid_bytes_ < limit_bytes_) {
      s = co_await Load(at, kScanWindowBytes - align);
      if (!s.ok()) co_return s;
      d = DecodeRecord(View(at), segment_.id());
    }
    if (d.outcome == DecodeOutcome::kRecord && (!flush_start_only || d.record.starts_flush())) {
      co_return std::optional<uint64_t>(at);
    }
    at += align;
  }
  co_return std::optional<uint64_t>();
}

}  // namespace dmalog::engine

// Makes a dropped tail permanent before the shard writes again: recovery
// decided (recovery.cc) that the log of `segment` ends at `valid_end`, and
// anything after it (a torn flush, damage the recovery mode dropped) must
// not read as "valid data after damage" once new records follow it.
#pragma once

#include <cstdint>
#include <string>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/segment.h"
#include "io/fs.h"

namespace dmalog::engine {

class SegmentScanner;

// The end of the non-zero bytes of `segment` at or after `from` (bounded by
// the file); `from` when there are none. Reads through `scanner`.
Task<Result<uint64_t>> DirtyEnd(SegmentScanner& scanner, const Segment& segment, uint64_t from);

// A dropped tail's copy keeps at most this many bytes (a flush is 1 MiB by
// default; more is a damaged file, not a torn write).
inline constexpr uint64_t kDroppedCopyBytesMax = 8u << 20;
// Copies kept for one segment offset (repairs there after repeated crashes).
inline constexpr uint32_t kDroppedCopiesPerOffsetMax = 1000;

struct TailRepair {
  uint64_t dropped_bytes = 0;  // From valid_end to the last non-zero byte.
  std::string copy_path;       // Where those bytes were saved; empty if none.
  std::string copy_error;      // Why they could not be saved (the repair went on).
};

// Saves the bytes from `valid_end` to the last non-zero byte of the file in
// "<segment file>.dropped-<valid_end>" in `dir` (the segment's directory),
// since records that verify may be among them (a torn flush keeps any
// subset of its sectors, and after a crash damage to the last acknowledged
// records reads as a torn tail: docs/durability.md). Then rewrites the
// partial block at `valid_end` with its valid prefix and a padding record,
// zeroes every non-zero byte after it, and fdatasyncs. `window` is a
// kScanWindowBytes aligned buffer and `zeros` an aligned, zero-filled
// buffer of `zeros_bytes`; all are borrowed for the call.
Task<Result<TailRepair>> ZeroTailAfter(const io::Directory& dir, Segment& segment,
                                       uint64_t valid_end, uint8_t* window, const uint8_t* zeros,
                                       uint32_t zeros_bytes);

}  // namespace dmalog::engine

// Makes a dropped tail permanent before the shard writes again: recovery
// decided (recovery.cc) that the log of `segment` ends at `valid_end`, and
// anything after it (a torn flush, damage the recovery mode dropped) must
// not read as "valid data after damage" once new records follow it.
#pragma once

#include <cstdint>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/segment.h"

namespace dmalog::engine {

// Rewrites the partial block at `valid_end` with its valid prefix and a
// padding record, zeroes every non-zero byte after it up to the end of the
// file, and fdatasyncs. Returns the bytes dropped (from `valid_end` to the
// end of the last non-zero byte). `window` is a kScanWindowBytes aligned
// buffer and `zeros` an aligned, zero-filled buffer of `zeros_bytes`; all
// are borrowed for the call.
Task<Result<uint64_t>> ZeroTailAfter(Segment& segment, uint64_t valid_end, uint8_t* window,
                                     const uint8_t* zeros, uint32_t zeros_bytes);

}  // namespace dmalog::engine

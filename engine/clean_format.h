// The clean-close marker: constants only. "CLEAN" in a shard's folder says
// where the shard's log ended when the database last closed cleanly, so the
// next open reads the log up to that point and no further: not the
// preallocated zeros after it, nor the spare segments made ahead of need.
// docs/format.md ("The clean-close marker") is the prose for this file;
// change both together and bump kCleanFormatVersion on any change to the
// bytes. All integers are little-endian.
//
// The protocol that keeps a marker from ever hiding data: Close writes it
// (temporary file, fdatasync, rename, directory fsync) only after the
// shard's last flush and its close record are durable; every open removes it
// (unlink, directory fsync) before the shard takes its first write.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmalog::format {

inline constexpr char kCleanFileName[] = "CLEAN";
inline constexpr uint32_t kCleanFormatVersion = 1;

// magic(8) version(4) shard(4) segment_id(8) end(8) last_sequence(8)
// checksum(8) = 48 bytes. `end` is the aligned offset in segment
// `segment_id` where the next write would have gone; `last_sequence` is
// the shard's last sequence number (0: none). `checksum` is XXH3-64
// (unseeded) over the 40 bytes before it.
inline constexpr char kCleanMagic[8] = {'D', 'M', 'A', 'L', 'O', 'G', 'C', 'L'};
inline constexpr size_t kCleanVersionOffset = 8;
inline constexpr size_t kCleanShardOffset = 12;
inline constexpr size_t kCleanSegmentIdOffset = 16;
inline constexpr size_t kCleanEndOffset = 24;
inline constexpr size_t kCleanLastSequenceOffset = 32;
inline constexpr size_t kCleanChecksumOffset = 40;
inline constexpr size_t kCleanFileBytes = 48;

static_assert(sizeof(kCleanMagic) == kCleanVersionOffset);
static_assert(kCleanVersionOffset + 4 == kCleanShardOffset);
static_assert(kCleanShardOffset + 4 == kCleanSegmentIdOffset);
static_assert(kCleanSegmentIdOffset + 8 == kCleanEndOffset);
static_assert(kCleanEndOffset + 8 == kCleanLastSequenceOffset);
static_assert(kCleanLastSequenceOffset + 8 == kCleanChecksumOffset);
static_assert(kCleanChecksumOffset + 8 == kCleanFileBytes);

}  // namespace dmalog::format

// Recovery: rebuilds one shard's index from its segments at open, and
// decides what damaged records mean. The policy is written in recovery.cc,
// where it is decided (as LevelDB's log_reader.cc does), and in
// docs/format.md ("Recovery classification").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dmalog/options.h"
#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/index.h"
#include "engine/segment.h"
#include "io/fs.h"

namespace dmalog::engine {

struct RecoveryInput {
  uint32_t shard = 0;
  const io::Directory* dir = nullptr;  // Borrowed for the call.
  RecoveryMode mode = RecoveryMode::kTolerateCorruptedTailRecords;
  io::DmaFileOptions file_options;
  uint64_t segment_size_bytes = 0;  // For a shard that has no segment yet.
  // Aligned, zero-filled, `zeros_bytes` long; borrowed for the call.
  const uint8_t* zeros = nullptr;
  uint32_t zeros_bytes = 0;
  // Build a sealed segment's index entries from its valid hint file
  // (engine/hint_file.h) instead of scanning it.
  bool use_hint_files = false;
};

struct RecoveredShard {
  std::vector<std::unique_ptr<Segment>> segments;  // By id; never empty.
  // The segment new writes go to, and where in it.
  size_t active_index = 0;
  uint64_t write_offset_bytes = 0;
  std::unique_ptr<Index> index;
  uint64_t last_sequence = 0;
  uint64_t records = 0;
  uint64_t dropped_bytes = 0;
  std::string note;  // What was dropped and why; empty when nothing was.
  // Segments that have a hint file after recovery (never the active one).
  std::vector<uint64_t> hinted_segment_ids;
  uint64_t segments_loaded_from_hints = 0;
  // Bytes recovery read: the scanned part of each scanned segment, plus the
  // hint files (and the blocks that check them) of hint-loaded segments.
  uint64_t read_bytes = 0;
  // The log was read only up to where the clean-close marker said it ended
  // (engine/clean_format.h); false after a crash, or when the log disagreed.
  bool used_clean_marker = false;
};

// Recovers a shard; errors name the segment and the offset of the damage.
Task<Result<RecoveredShard>> RecoverShard(RecoveryInput input);

}  // namespace dmalog::engine

#include "dmalog/options.h"

#include <string>

#include "engine/engine_impl.h"
#include "engine/flush_pacer.h"
#include "engine/format.h"
#include "scheduler/executor_group.h"

namespace dmalog {

const char* RecoveryModeName(RecoveryMode mode) noexcept {
  switch (mode) {
    case RecoveryMode::kTolerateCorruptedTailRecords:
      return "tolerate_corrupted_tail_records";
    case RecoveryMode::kAbsoluteConsistency:
      return "absolute_consistency";
    case RecoveryMode::kPointInTime:
      return "point_in_time";
    case RecoveryMode::kSkipAnyCorruptedRecords:
      return "skip_any_corrupted_records";
  }
  return "unknown";
}

bool ParseRecoveryMode(const std::string& name, RecoveryMode* mode) {
  for (RecoveryMode m :
       {RecoveryMode::kTolerateCorruptedTailRecords, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTime, RecoveryMode::kSkipAnyCorruptedRecords}) {
    if (name == RecoveryModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

namespace engine {

Status ValidateOptions(const Options& o) {
  if (o.db_path.empty()) return Status::InvalidArgument("--db is empty: name a directory");
  if (o.segment_size_bytes < format::kSegmentSizeBytesMin ||
      o.segment_size_bytes > format::kSegmentSizeBytesMax || o.segment_size_bytes % 65536 != 0) {
    return Status::InvalidArgument("segment_size_bytes " + std::to_string(o.segment_size_bytes) +
                                   " must be a multiple of "
                                   "64 KiB between " +
                                   std::to_string(format::kSegmentSizeBytesMin) + " and " +
                                   std::to_string(format::kSegmentSizeBytesMax));
  }
  if (o.segments_preallocated < 1 || o.segments_preallocated > Options::kSegmentsPreallocatedMax) {
    return Status::InvalidArgument("segments_preallocated " +
                                   std::to_string(o.segments_preallocated) + " must be 1 to " +
                                   std::to_string(Options::kSegmentsPreallocatedMax));
  }
  if (o.group_commit_linger_us > FlushPacer::kLingerUsMax) {
    return Status::InvalidArgument("group_commit_linger_us " +
                                   std::to_string(o.group_commit_linger_us) + " is over " +
                                   std::to_string(FlushPacer::kLingerUsMax));
  }
  if (o.shard_count > sched::kShardsMax) {
    return Status::InvalidArgument("shard_count " + std::to_string(o.shard_count) +
                                   " is over the limit of " + std::to_string(sched::kShardsMax));
  }
  return Status::OK();
}

}  // namespace engine
}  // namespace dmalog

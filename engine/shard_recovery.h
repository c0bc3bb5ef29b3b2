// ShardRecovery: the state of one shard's recovery at open. Internal to
// engine/recovery.cc (the policy: scanning, what damage means, repair) and
// engine/shard_recovery.cc (opening segments, applying records, hint files
// and the clean-close marker check); nothing else includes this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "engine/aligned.h"
#include "engine/clean_marker.h"
#include "engine/record.h"
#include "engine/recovery.h"
#include "engine/segment_scanner.h"

namespace dmalog::engine {

// Upper bound on the segments of one shard that recovery will open.
constexpr size_t kSegmentsPerShardMax = 1u << 20;

enum class SegmentEnd : uint8_t { kNext, kStop };

class ShardRecovery {
 public:
  explicit ShardRecovery(RecoveryInput input) : in_(input) {}
  // With `marker`: nullopt (and nothing changed on disk but tidying) when
  // the log disagrees with it; the caller then runs a new ShardRecovery
  // without one.
  Task<Result<std::optional<RecoveredShard>>> Run(const CleanEnd* marker);

 private:
  Task<Status> OpenSegments();
  // The whole log, deciding what damage means (the policy above); true
  // when it repaired the tail.
  Task<Result<bool>> RecoverAll();
  Task<Status> PadCleanEnd();
  // Only up to where the clean-close marker says the log ends; false (and
  // nothing changed on disk) when the log does not agree with the marker.
  Task<Result<bool>> RecoverUpTo(const CleanEnd& marker);
  // true when the alignment block of segment i at `offset` holds only zeros
  // (or lies past the end of the file).
  Task<Result<bool>> ZeroBlockAt(size_t i, uint64_t offset);
  Task<Result<SegmentEnd>> ScanSegment(size_t i, uint64_t end_bytes);
  Task<Result<SegmentEnd>> OnDamage(size_t i, SegmentScanner& scanner, uint64_t offset,
                                    const char* reason);
  Task<Result<bool>> ValidDataInLaterSegments(size_t i);
  Task<Status> RepairTail(size_t i, uint64_t valid_end);
  Task<Status> DropSegmentsAfter(size_t i);
  // Zeroes the block at the clean end of the active segment, and the first
  // data block of each later segment, where they are not zero (they hold no
  // valid record).
  Task<Status> ZeroAfterCleanEnd(size_t active);
  Task<bool> LoadFromHint(size_t i);
  // Removes a segment's hint (durably) before recovery changes the segment.
  Status RemoveStaleHint(uint64_t segment_id);
  Status Apply(const RecordView& record, const Segment& segment, uint64_t offset);
  std::string Where(size_t i, uint64_t offset) const {
    return "segment " + out_.segments[i]->path() + " offset " + std::to_string(offset);
  }
  void Note(const std::string& what) {
    if (!out_.note.empty()) out_.note += "; ";
    out_.note += what;
  }

  RecoveryInput in_;
  RecoveredShard out_;
  AlignedBuffer window_;  // The window of the segment being scanned.
  // Probes of later segments use their own window: sharing window_ would
  // replace the bytes the current segment's scanner believes it holds.
  AlignedBuffer probe_window_;
  uint64_t valid_end_ = 0;  // End of the last valid record of the segment being scanned.
  // valid_end_ of each scanned segment, by index: where its clean end lies.
  std::vector<uint64_t> valid_ends_;
  size_t last_data_index_ = 0;  // Last segment that holds a valid record.
  bool any_data_ = false;
  absl::flat_hash_set<uint64_t> hinted_;  // Segment ids with a hint file.
  // While RecoverUpTo runs: damage only means the marker is not to be
  // trusted (marker_disagrees_), never a repair.
  bool trusting_marker_ = false;
  bool marker_disagrees_ = false;
};

}  // namespace dmalog::engine

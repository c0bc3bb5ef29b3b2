// The clean-close marker (engine/clean_format.h, docs/format.md "The
// clean-close marker"): where a shard's log ended at its last clean close.
//
//   * EncodeCleanMarker / DecodeCleanMarker: pure functions over bytes.
//   * ReadCleanMarker, RemoveCleanMarkerDurably: recovery's side. Recovery
//     trusts a marker only as far as the log agrees with it (recovery.cc),
//     and removes it before the shard takes a write, so a marker never
//     outlives the state it describes.
//   * WriteCleanMarker: Shard::Stop's side, after the close record is
//     durable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "io/fs.h"

namespace dmalog::engine {

// Where a shard's log ended at a clean close.
struct CleanEnd {
  uint64_t segment_id = 0;
  uint64_t end_bytes = 0;  // Aligned: where the next write would have gone.
  uint64_t last_sequence = 0;
  bool operator==(const CleanEnd&) const = default;
};

std::string EncodeCleanMarker(uint32_t shard, const CleanEnd& end);
// Corruption naming `where` when `bytes` are not a marker of `shard`.
Result<CleanEnd> DecodeCleanMarker(std::string_view bytes, uint32_t shard, std::string_view where);

// The marker in `dir`, or nullopt when there is none. A marker that does not
// decode is an error naming the file; the caller ignores the marker then
// (it is an optimisation: the open reads the whole log, as without one).
Result<std::optional<CleanEnd>> ReadCleanMarker(const io::Directory& dir, uint32_t shard);
// Removes the marker and any temporary left by an interrupted write, then
// syncs `dir`; OK when there is none. Runs on the calling thread.
Status RemoveCleanMarkerDurably(const io::Directory& dir);
// Writes the marker atomically and durably through the executor's ring.
// `dir` is borrowed until the task ends.
Task<Status> WriteCleanMarker(const io::Directory& dir, uint32_t shard, CleanEnd end);

}  // namespace dmalog::engine

// Hint files (engine/hint_format.h, docs/format.md "Hint files"): for each
// sealed segment, the list of its puts and deletes as the index needs them,
// so that an open with Options::use_hint_files builds the segment's index
// entries from a small file instead of reading the whole segment.
//
//   * The codec (HintEncoder, EncodeHint, DecodeHint): pure functions over
//     bytes, no I/O. DecodeHint checks everything a hint can say about
//     itself (fuzzed by fuzz/hint_fuzz.cc).
//   * LoadHint: recovery's side. Reads a hint and checks it against its
//     segment (one small read of the segment's last record and one of the
//     block where new data would start); any invalid hint is removed and the
//     caller scans the segment instead.
//   * HintWriter: the shard's background task that writes the hint of each
//     segment the writer has rolled past, once that segment is durable.
//     Hints are an optimisation: a failure is counted, never returned to a
//     writer.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/hint_format.h"
#include "engine/segment.h"
#include "engine/wait_list.h"
#include "io/fs.h"

namespace dmalog::engine {

class LogWriter;

// "00000042.hint" for segment 42.
std::string HintFileName(uint64_t segment_id);
// The segment id of a hint file name, or nullopt for any other name.
std::optional<uint64_t> ParseHintFileName(const std::string& name);
// True for a hint left half-written by a crash ("00000042.hint.tmp").
bool IsTemporaryHintFileName(const std::string& name);

struct HintHeader {
  uint32_t shard = 0;
  uint64_t segment_id = 0;
  uint64_t segment_size_bytes = 0;
  uint64_t end_bytes = 0;  // End of the segment's last record.
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  uint64_t last_record_offset_bytes = 0;
  uint64_t last_record_checksum = 0;
};

struct HintEntry {
  format::RecordType type = format::kPutType;  // kPutType or kDeleteType.
  uint64_t sequence = 0;
  uint32_t record_offset_bytes = 0;
  uint32_t record_bytes = 0;
  std::string_view key;
};

struct DecodedHint {
  HintHeader header;
  std::vector<HintEntry> entries;  // Keys point into the decoded bytes.
};

// Builds a hint entry by entry (keys are copied at Add, so they may point
// into a scan window that changes).
class HintEncoder {
 public:
  HintEncoder();
  // False (nothing added) when the entry would pass kHintEntriesMax or
  // kHintFileBytesMax.
  [[nodiscard]] bool Add(const HintEntry& entry);
  uint32_t entries() const noexcept { return entries_; }
  // The whole file: `header` (first/last sequence as given), the entries,
  // the trailer. Call once.
  std::string Finish(const HintHeader& header);

 private:
  std::string bytes_;
  uint32_t entries_ = 0;
};

// Encodes a whole hint; `entries` must satisfy the limits (asserted).
std::string EncodeHint(const HintHeader& header, std::span<const HintEntry> entries);

// Decodes and checks a hint: size, magic, version, trailer checksum, zero
// reserved fields, entry lengths inside the file, types, records inside
// [kSegmentHeaderEncodedBytes, end], record offsets in log order, sequences
// strictly increasing from first_sequence to last_sequence, the last
// record's offset consistent with the entries. Corruption naming `path`
// otherwise; Unsupported for a newer version.
Result<DecodedHint> DecodeHint(std::span<const uint8_t> bytes, std::string_view path);

// A hint read from disk; the entries' keys point into *bytes.
struct LoadedHint {
  std::unique_ptr<std::string> bytes;
  DecodedHint hint;
  uint64_t read_bytes = 0;  // Hint bytes plus segment bytes read to check it.
};

// Reads the hint of `segment` (which must exist in `dir`) and checks it
// against the segment: shard, id, size, end inside the file, its last
// record's stored checksum, zeros where new data would start, first
// sequence above `previous_last_sequence`; and against `next`, the segment
// after it (null when `segment` is the last one): its first record must
// carry the sequence after the hint's last, which proves that `segment` is
// not the log's tail (the tail is always scanned: torn writes live there)
// and that nothing is missing at its end. Returns nullopt when the hint is
// invalid (after removing it durably when it can; `*why` gets the reason).
// Never an error: a bad hint only costs a scan. `dir`, `segment`, `next`
// and `why` are borrowed for the call.
Task<std::optional<LoadedHint>> LoadHint(const io::Directory& dir, uint32_t shard,
                                         const Segment& segment, const Segment* next,
                                         uint64_t previous_last_sequence, std::string* why);

// Removes the hint of segment `segment_id` and syncs the directory, if the
// hint exists. Used before recovery changes or deletes a segment.
Status RemoveHintDurably(const io::Directory& dir, uint64_t segment_id);

// At open: removes hint temporaries and hints whose segment is gone, and
// returns the ids of the segments that have a hint file. `names` is the
// directory listing, `segment_ids` the segments it holds.
Result<std::vector<uint64_t>> TidyHintFiles(const io::Directory& dir,
                                            const std::vector<std::string>& names,
                                            const std::vector<uint64_t>& segment_ids);

// Reads sealed, durable segment `segment` (borrowed) and encodes its hint.
// `window` is a kScanWindowBytes aligned buffer, borrowed for the call.
// Corruption when the segment does not read back cleanly to its end_bytes.
Task<Result<std::string>> BuildHint(uint32_t shard, const Segment& segment, uint8_t* window);

struct HintWriterStats {
  uint64_t written = 0;
  uint64_t failures = 0;
};

class HintWriter {
 public:
  // `dir` and `writer` are borrowed for the hint writer's life (the Shard
  // owns all three). `hinted_ids`: segments that already have a hint.
  HintWriter(uint32_t shard, const io::Directory* dir, LogWriter* writer,
             const std::vector<uint64_t>& hinted_ids);
  HintWriter(const HintWriter&) = delete;
  HintWriter& operator=(const HintWriter&) = delete;

  // Writes the hint of every sealed segment that has none, then of each one
  // the writer rolls past, until the writer stops or fails. Spawn it on the
  // shard's background queue.
  Task<void> Loop();
  // Waits for Loop to end; call after LogWriter::Stop().
  Task<void> Stop();
  const HintWriterStats& stats() const noexcept { return stats_; }

 private:
  Task<void> Run();
  const Segment* NextUnhinted() const;
  Task<Status> WriteOne(const Segment& segment);

  const uint32_t shard_;
  const io::Directory* const dir_;
  LogWriter* const writer_;
  absl::flat_hash_set<uint64_t> done_;  // Hinted, or tried once.
  HintWriterStats stats_;
  bool spawned_ = false;  // Set when Loop() is called, before the task runs.
  bool loop_done_ = false;
  WaitList stopped_;
};

}  // namespace dmalog::engine

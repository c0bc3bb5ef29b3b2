// Recovery policy (decided here; summarised in docs/format.md):
//
// Each segment is read in order from its first record. A record whose
// checksum verifies is applied to the index, if its sequence number is
// above every earlier one (a lower one is a stale or misdirected block and
// counts as damage). An all-zero header ends the segment's data (so do the
// last few bytes of a short file, fewer than a header, when they are zero),
// unless a valid record follows later in the same segment: that is a hole,
// damage.
//
// Damage at offset X is a TORN TAIL when no flush starts after it in this
// segment (no valid record flagged format::kRecordFlagFlushStart; in a
// version-1 segment, no valid record) and no valid record is in any later
// segment: it is the flush that was in flight at a crash, which was never
// acknowledged. Valid records of that flush may follow the damage, since a
// crash can keep any subset of a write's sectors; they go with it. A flush
// never spans segments. Otherwise it is CORRUPTION IN THE
// MIDDLE: something damaged data that had been made durable. A clean close
// leaves a close record (format::kCloseType) after the last flush, so after
// a clean close no acknowledged record is at the very end of the log, and
// damage to the last flush is corruption in the middle too.
//
//   tolerate_corrupted_tail_records: drop a torn tail; fail on corruption in
//                                    the middle.
//   absolute_consistency:            fail on any damage.
//   point_in_time:                   stop at the first damage; drop it and
//                                    everything after it (later segments
//                                    are deleted).
//   skip_any_corrupted_records:      skip each damaged region and continue.
//
// Whenever the tail of the log is dropped, recovery makes the drop
// permanent before any new write: the partial block at the end of the last
// valid record is rewritten with a padding record, and the damaged bytes
// after it are zeroed and fdatasync'ed. Otherwise new records written after
// the damage would later read as "valid data after damage".
#include "engine/recovery.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>

#include "engine/aligned.h"
#include "engine/clean_marker.h"
#include "engine/hint_file.h"
#include "engine/segment_scanner.h"
#include "engine/tail_repair.h"

namespace dmalog::engine {
namespace {

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

Task<Status> ShardRecovery::OpenSegments() {
  Result<std::vector<std::string>> names = io::ListDirectory(in_.dir->path());
  if (!names.ok()) co_return names.status();
  std::vector<uint64_t> ids;
  for (const std::string& name : *names) {
    if (std::optional<uint64_t> id = ParseSegmentFileName(name)) ids.push_back(*id);
    if (IsTemporarySegmentFileName(name)) {
      // A segment whose preparation a crash interrupted: it never held data.
      Status s = io::RemoveFileDurably(in_.dir->path() + "/" + name);
      if (!s.ok()) co_return s;
    }
  }
  std::sort(ids.begin(), ids.end());
  Result<std::vector<uint64_t>> hinted = TidyHintFiles(*in_.dir, *names, ids);
  if (!hinted.ok()) co_return hinted.status();
  hinted_.insert(hinted->begin(), hinted->end());
  if (ids.size() > kSegmentsPerShardMax) {
    co_return Status::Corruption(in_.dir->path() + " holds " + std::to_string(ids.size()) +
                                 " segments; the limit is " + std::to_string(kSegmentsPerShardMax));
  }
  for (uint64_t id : ids) {
    Result<std::unique_ptr<Segment>> segment =
        co_await Segment::Open(in_.dir->path() + "/" + SegmentFileName(id), in_.shard, id,
                               in_.file_options, window_.get());
    if (!segment.ok()) co_return segment.status();
    out_.segments.push_back(std::move(*segment));
  }
  if (out_.segments.empty()) {
    Result<std::unique_ptr<Segment>> first =
        co_await Segment::Create(*in_.dir, in_.shard, 1, in_.segment_size_bytes, in_.file_options,
                                 in_.zeros, in_.zeros_bytes);
    if (!first.ok()) co_return first.status();
    out_.segments.push_back(std::move(*first));
  }
  co_return Status::OK();
}

Status ShardRecovery::Apply(const RecordView& record, const Segment& segment, uint64_t offset) {
  assert(segment.id() <= UINT32_MAX);
  const IndexEntry at{static_cast<uint32_t>(segment.id()), static_cast<uint32_t>(offset),
                      record.encoded_bytes, record.sequence};
  switch (record.type) {
    case format::kPutType:
      out_.index->Put(record.key, at).reset();
      break;
    case format::kDeleteType:
      out_.index->Erase(record.key, record.sequence).reset();
      break;
    case format::kBatchType: {
      BatchReader reader(record.value);
      Result<uint32_t> count = reader.Count();
      if (!count.ok()) return count.status();
      for (uint32_t i = 0; i < *count; ++i) {
        Result<BatchEntry> entry = reader.Next();
        if (!entry.ok()) return entry.status();
        IndexEntry e = at;
        e.sequence = record.sequence + i;
        if (entry->type == format::kPutType) {
          out_.index->Put(entry->key, e).reset();
        } else {
          out_.index->Erase(entry->key, e.sequence).reset();
        }
      }
      out_.last_sequence = record.sequence + (*count > 0 ? *count - 1 : 0);
      ++out_.records;
      return Status::OK();
    }
    default:
      return Status::OK();  // Padding and ignorable types carry no data.
  }
  out_.last_sequence = record.sequence;
  ++out_.records;
  return Status::OK();
}

Task<Result<bool>> ShardRecovery::ValidDataInLaterSegments(size_t i) {
  for (size_t j = i + 1; j < out_.segments.size(); ++j) {
    const Segment& later = *out_.segments[j];
    SegmentScanner scanner(later, later.data_start_bytes(), later.file_size_bytes,
                           probe_window_.get());
    Result<std::optional<uint64_t>> found =
        co_await scanner.FindValidRecordFrom(later.data_start_bytes());
    if (!found.ok()) co_return found.status();
    if (found->has_value()) co_return true;
  }
  co_return false;
}

Task<Result<SegmentEnd>> ShardRecovery::OnDamage(size_t i, SegmentScanner& scanner, uint64_t offset,
                                                 const char* reason) {
  if (trusting_marker_) {
    // The log was durable to the marker's end when it was written: damage
    // before it is for the full recovery to classify.
    marker_disagrees_ = true;
    co_return SegmentEnd::kStop;
  }
  // Damage is the torn tail when no later flush started after it: valid
  // records after it in this segment that start no flush belong to the
  // flush it is in, whose sectors reached the disk out of order (any subset
  // of a write's sectors may survive a crash). One flush is in flight at a
  // time, so a flush that started later means the damaged one had
  // completed: it was acknowledged. A flush never spans segments, so any
  // valid record in a later segment is a later flush's.
  Result<std::optional<uint64_t>> flush_here = co_await scanner.FindFlushStartFrom(offset + 1);
  if (!flush_here.ok()) co_return flush_here.status();
  Result<bool> later = co_await ValidDataInLaterSegments(i);
  if (!later.ok()) co_return later.status();
  const bool torn_tail = !flush_here->has_value() && !*later;
  const std::string what = Where(i, offset) + ": " + reason;
  switch (in_.mode) {
    case RecoveryMode::kTolerateCorruptedTailRecords:
      if (torn_tail) {
        Note(what + " at the tail (a write torn by a crash, never acknowledged): dropped");
        co_return SegmentEnd::kStop;
      }
      co_return Status::Corruption(
          what +
          ", and valid records follow it: the log is damaged in the middle. "
          "`dmalog --db=DIR tail` lists what precedes it; to open anyway, use "
          "--recovery_mode=point_in_time (keep what precedes the damage) or "
          "skip_any_corrupted_records (skip damaged records)");
    case RecoveryMode::kAbsoluteConsistency:
      co_return Status::Corruption(what + (torn_tail ? " at the tail" : " in the middle") +
                                   "; absolute_consistency refuses any damaged record");
    case RecoveryMode::kPointInTime:
      Note(what + ": recovered up to it, dropped the rest (point_in_time)");
      co_return SegmentEnd::kStop;
    case RecoveryMode::kSkipAnyCorruptedRecords: {
      Result<std::optional<uint64_t>> next_here = co_await scanner.FindValidRecordFrom(offset + 1);
      if (!next_here.ok()) co_return next_here.status();
      if (next_here->has_value()) {
        out_.dropped_bytes += **next_here - offset;
        Note(what + ": skipped " + std::to_string(**next_here - offset) + " bytes");
        scanner.Seek(**next_here);
        co_return SegmentEnd::kNext;  // Caller continues scanning this segment.
      }
      Note(what + ": skipped the rest of the segment");
      co_return *later ? SegmentEnd::kNext : SegmentEnd::kStop;
    }
  }
  co_return Status::InvalidArgument("unknown recovery mode");
}

Task<Result<SegmentEnd>> ShardRecovery::ScanSegment(size_t i, uint64_t end_bytes) {
  Segment& segment = *out_.segments[i];
  assert(end_bytes <= segment.file_size_bytes);
  SegmentScanner scanner(segment, segment.data_start_bytes(), end_bytes, window_.get());
  valid_end_ = segment.data_start_bytes();
  // Each step advances by at least one header or one alignment block.
  const uint64_t steps_max = segment.size_bytes() / format::kRecordHeaderBytes + 2;
  for (uint64_t step = 0; step < steps_max; ++step) {
    Result<ScanItem> item = co_await scanner.Peek();
    if (!item.ok()) co_return item.status();
    const uint64_t offset = item->offset_bytes;
    const char* damage = nullptr;
    if (item->outcome == DecodeOutcome::kRecord) {
      const RecordView& r = item->record;
      const bool carries_data = r.type >= format::kPutType && r.type <= format::kBatchType;
      if (carries_data && r.sequence <= out_.last_sequence) {
        damage = "sequence number goes backwards (a stale or misdirected block)";
      } else {
        Status s = Apply(r, segment, offset);
        if (!s.ok()) co_return s.WithContext(Where(i, offset));
        if (carries_data) {
          if (segment.first_sequence == 0) segment.first_sequence = r.sequence;
          segment.last_sequence = out_.last_sequence;
          last_data_index_ = i;
          any_data_ = true;
        }
        scanner.Advance(r.encoded_bytes);
        valid_end_ = scanner.position_bytes();
        continue;
      }
    } else if (item->outcome == DecodeOutcome::kZero) {
      Result<std::optional<uint64_t>> later = co_await scanner.FindValidRecordFrom(offset + 1);
      if (!later.ok()) co_return later.status();
      if (!later->has_value()) {
        segment.end_bytes = AlignUp(valid_end_, segment.alignment_bytes());
        valid_ends_[i] = valid_end_;
        co_return SegmentEnd::kNext;
      }
      damage = "unwritten space (a lost write)";
    } else {
      damage = DecodeOutcomeName(item->outcome);
    }
    Result<SegmentEnd> end = co_await OnDamage(i, scanner, offset, damage);
    if (!end.ok()) co_return end.status();
    if (*end == SegmentEnd::kStop || scanner.position_bytes() == offset) {
      segment.end_bytes = AlignUp(valid_end_, segment.alignment_bytes());
      if (*end == SegmentEnd::kStop) {
        last_data_index_ = i;
        any_data_ = true;
      }
      co_return *end;
    }
  }
  co_return Status::Corruption(Where(i, scanner.position_bytes()) + ": recovery did not end");
}

Task<Status> ShardRecovery::RepairTail(size_t i, uint64_t valid_end) {
  Result<uint64_t> dropped = co_await ZeroTailAfter(*out_.segments[i], valid_end, window_.get(),
                                                    in_.zeros, in_.zeros_bytes);
  if (!dropped.ok()) co_return dropped.status();
  out_.dropped_bytes += *dropped;
  co_return Status::OK();
}

Task<Status> ShardRecovery::DropSegmentsAfter(size_t i) {
  while (out_.segments.size() > i + 1) {
    std::unique_ptr<Segment> last = std::move(out_.segments.back());
    out_.segments.pop_back();
    const std::string path = last->path();
    out_.dropped_bytes += last->file_size_bytes;
    Status s = RemoveStaleHint(last->id());
    if (!s.ok()) co_return s;
    last.reset();
    s = io::RemoveFileDurably(path);
    if (!s.ok()) co_return s;
    Note("deleted " + path);
  }
  co_return Status::OK();
}

Status ShardRecovery::RemoveStaleHint(uint64_t id) {
  if (!hinted_.contains(id)) return Status::OK();
  Status s = RemoveHintDurably(*in_.dir, id);
  if (!s.ok()) return s.WithContext("removing the hint of a segment recovery changes");
  hinted_.erase(id);
  return Status::OK();
}

// Applies segment i's hint instead of scanning it, if the hint is valid
// (engine/hint_file.cc checks it; an invalid one is removed: false).
Task<bool> ShardRecovery::LoadFromHint(size_t i) {
  Segment& segment = *out_.segments[i];
  std::string why;
  std::optional<LoadedHint> loaded =
      co_await LoadHint(*in_.dir, in_.shard, segment,
                        i + 1 < out_.segments.size() ? out_.segments[i + 1].get() : nullptr,
                        out_.last_sequence, &why);
  if (!loaded) {
    hinted_.erase(segment.id());
    co_return false;
  }
  const HintHeader& h = loaded->hint.header;
  uint64_t record_offset = UINT64_MAX;
  for (const HintEntry& e : loaded->hint.entries) {
    const IndexEntry at{static_cast<uint32_t>(segment.id()), e.record_offset_bytes, e.record_bytes,
                        e.sequence};
    if (e.type == format::kPutType) {
      out_.index->Put(e.key, at).reset();
    } else {
      out_.index->Erase(e.key, e.sequence).reset();
    }
    if (e.record_offset_bytes != record_offset) ++out_.records;  // A batch counts once.
    record_offset = e.record_offset_bytes;
  }
  if (!loaded->hint.entries.empty()) {
    segment.first_sequence = h.first_sequence;
    segment.last_sequence = out_.last_sequence = h.last_sequence;
    last_data_index_ = i;
    any_data_ = true;
  }
  valid_end_ = valid_ends_[i] = h.end_bytes;
  segment.end_bytes = AlignUp(h.end_bytes, segment.alignment_bytes());
  ++out_.segments_loaded_from_hints;
  out_.read_bytes += loaded->read_bytes;
  co_return true;
}

Task<Result<bool>> ShardRecovery::RecoverAll() {
  bool repaired = false;
  for (size_t i = 0; i < out_.segments.size(); ++i) {
    if (in_.use_hint_files && hinted_.contains(out_.segments[i]->id())) {
      const bool loaded = co_await LoadFromHint(i);
      if (loaded) continue;
    }
    Result<SegmentEnd> end = co_await ScanSegment(i, out_.segments[i]->file_size_bytes);
    if (!end.ok()) co_return end.status();
    out_.read_bytes += valid_end_ - out_.segments[i]->data_start_bytes();
    if (*end == SegmentEnd::kStop) {
      const bool dropped = !out_.note.empty();
      if (dropped) {
        Status s = RemoveStaleHint(out_.segments[i]->id());
        if (!s.ok()) co_return s;
        s = co_await RepairTail(i, valid_end_);
        if (!s.ok()) co_return s;
        repaired = true;
      }
      if (in_.mode == RecoveryMode::kPointInTime) {
        Status s = co_await DropSegmentsAfter(i);
        if (!s.ok()) co_return s;
      }
      break;
    }
  }
  co_return repaired;
}

// A clean end inside an alignment block (the padding record that ended the
// last flush was lost: a torn write) must be padded before new writes start
// at the next aligned offset; otherwise the zero gap would read as a lost
// write in the middle of the log at the next open.
// (A gap shorter than a record header is one the scanner skips.)
Task<Status> ShardRecovery::PadCleanEnd() {
  const size_t active_index = any_data_ ? last_data_index_ : 0;
  Segment& active = *out_.segments[active_index];
  const uint64_t clean_end = valid_ends_[active_index];
  if (AlignUp(clean_end, active.alignment_bytes()) - clean_end < format::kRecordHeaderBytes) {
    co_return Status::OK();
  }
  Note(Where(active_index, clean_end) +
       ": the padding record ending the last flush is missing (a torn write): padded");
  Status s = RemoveStaleHint(active.id());
  if (!s.ok()) co_return s;
  co_return co_await RepairTail(active_index, clean_end);
}

// After a clean close, the log ends where the marker says, and the segments
// after that one are spares the closed session never wrote (a session
// removes the marker before its first write). So recovery reads the log up
// to that point only, and trusts it only if the log ends there cleanly with
// the marker's last sequence number; otherwise the full recovery runs.
Task<Result<bool>> ShardRecovery::RecoverUpTo(const CleanEnd& marker) {
  size_t marked = 0;
  while (marked < out_.segments.size() && out_.segments[marked]->id() != marker.segment_id) {
    ++marked;
  }
  if (marked == out_.segments.size()) co_return false;
  const Segment& last = *out_.segments[marked];
  if (marker.end_bytes % last.alignment_bytes() != 0 ||
      marker.end_bytes < last.data_start_bytes() || marker.end_bytes > last.file_size_bytes) {
    co_return false;
  }
  trusting_marker_ = true;
  for (size_t i = 0; i <= marked && !marker_disagrees_; ++i) {
    if (in_.use_hint_files && hinted_.contains(out_.segments[i]->id())) {
      const bool loaded = co_await LoadFromHint(i);
      if (loaded) continue;
    }
    const uint64_t end_bytes = i == marked ? marker.end_bytes : out_.segments[i]->file_size_bytes;
    Result<SegmentEnd> end = co_await ScanSegment(i, end_bytes);
    if (!end.ok()) co_return end.status();
    out_.read_bytes += valid_end_ - out_.segments[i]->data_start_bytes();
  }
  trusting_marker_ = false;
  // The log must end at the marker's end, or fewer bytes than a record
  // header before it: zeros the scanner skips, as a flush leaves when too
  // little of its last block remains for a padding record.
  const uint64_t valid_end = valid_ends_[marked];
  const bool ends_there =
      valid_end <= marker.end_bytes && marker.end_bytes - valid_end < format::kRecordHeaderBytes;
  if (marker_disagrees_ || !ends_there || out_.last_sequence != marker.last_sequence) {
    co_return false;
  }
  // Nothing was written after a clean close: the block at the end and the
  // first data block of each later segment still hold the preallocated
  // zeros. A stale or forged marker that stops short of data fails here.
  for (size_t i = marked; i < out_.segments.size(); ++i) {
    const uint64_t at = i == marked ? marker.end_bytes : out_.segments[i]->data_start_bytes();
    Result<bool> zero = co_await ZeroBlockAt(i, at);
    if (!zero.ok()) co_return zero.status();
    if (!*zero) co_return false;
  }
  for (size_t i = marked + 1; i < out_.segments.size(); ++i) {
    Segment& spare = *out_.segments[i];
    valid_ends_[i] = spare.data_start_bytes();
    spare.end_bytes = AlignUp(spare.data_start_bytes(), spare.alignment_bytes());
  }
  co_return true;
}

Task<Result<bool>> ShardRecovery::ZeroBlockAt(size_t i, uint64_t offset) {
  const Segment& segment = *out_.segments[i];
  const uint32_t align = segment.alignment_bytes();
  assert(offset % align == 0 && align <= kScanWindowBytes);
  if (offset >= segment.file_size_bytes) co_return true;
  io::IoAwaitable read = segment.file().Read(probe_window_.get(), align, offset);
  Status s = co_await read;
  if (!s.ok()) co_return s.WithContext(Where(i, offset));
  out_.read_bytes += read.done_bytes();
  const uint8_t* bytes = probe_window_.get();
  co_return std::all_of(bytes, bytes + read.done_bytes(), [](uint8_t b) { return b == 0; });
}

Task<Result<std::optional<RecoveredShard>>> ShardRecovery::Run(const CleanEnd* marker) {
  window_ = AllocateAligned(kScanWindowBytes);
  probe_window_ = AllocateAligned(kScanWindowBytes);
  if (!window_ || !probe_window_)
    co_return Status::IOError("out of memory allocating the recovery window");
  out_.index = std::make_unique<Index>();
  Status s = co_await OpenSegments();
  if (!s.ok()) co_return s;
  valid_ends_.assign(out_.segments.size(), 0);
  if (marker != nullptr) {
    Result<bool> trusted = co_await RecoverUpTo(*marker);
    if (!trusted.ok()) co_return trusted.status();
    if (!*trusted) co_return std::nullopt;
    out_.used_clean_marker = true;
  }
  bool repaired = false;
  if (marker == nullptr) {
    Result<bool> all = co_await RecoverAll();
    if (!all.ok()) co_return all.status();
    repaired = *all;
  }
  if (!repaired) {
    s = co_await PadCleanEnd();
    if (!s.ok()) co_return s;
  }
  // Before the shard takes a write: a marker must never outlive the end it
  // describes (clean_format.h).
  s = RemoveCleanMarkerDurably(*in_.dir);
  if (!s.ok()) co_return s;
  out_.active_index = any_data_ ? last_data_index_ : 0;
  Segment& active = *out_.segments[out_.active_index];
  // New records go to the active segment: a hint of it would be stale.
  s = RemoveStaleHint(active.id());
  if (!s.ok()) co_return s;
  out_.hinted_segment_ids.assign(hinted_.begin(), hinted_.end());
  std::sort(out_.hinted_segment_ids.begin(), out_.hinted_segment_ids.end());
  out_.write_offset_bytes = std::max(active.end_bytes, active.data_start_bytes());
  co_return std::optional<RecoveredShard>(std::move(out_));
}

}  // namespace

Task<Result<RecoveredShard>> RecoverShard(RecoveryInput input) {
  assert(input.dir != nullptr && input.zeros != nullptr && input.zeros_bytes > 0);
  Result<std::optional<CleanEnd>> marker = ReadCleanMarker(*input.dir, input.shard);
  // An unreadable marker costs only the full recovery: its error is dropped
  // (the recovery removes the file).
  if (!marker.ok()) marker.status().IgnoreError();
  if (marker.ok() && marker->has_value()) {
    ShardRecovery trusting(input);
    Result<std::optional<RecoveredShard>> recovered = co_await trusting.Run(&**marker);
    if (!recovered.ok()) co_return recovered.status();
    if (recovered->has_value()) co_return std::move(**recovered);
  }
  ShardRecovery recovery(input);
  Result<std::optional<RecoveredShard>> recovered = co_await recovery.Run(nullptr);
  if (!recovered.ok()) co_return recovered.status();
  assert(recovered->has_value());
  co_return std::move(**recovered);
}

}  // namespace dmalog::engine

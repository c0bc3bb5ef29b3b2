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
#include "engine/shard_recovery.h"
#include "engine/tail_repair.h"

namespace dmalog::engine {

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
          "Copy the database directory first; then, to open anyway, use "
          "--recovery_mode=skip_any_corrupted_records (skip damaged records) or "
          "point_in_time (keep only what precedes the damage, and delete the rest "
          "from the log for good)");
    case RecoveryMode::kAbsoluteConsistency:
      co_return Status::Corruption(what + (torn_tail ? " at the tail" : " in the middle") +
                                   "; absolute_consistency refuses any damaged record");
    case RecoveryMode::kPointInTime:
      Note(what + ": recovered up to it, dropped the rest (point_in_time)");
      co_return SegmentEnd::kStop;
    case RecoveryMode::kSkipAnyCorruptedRecords: {
      Result<std::optional<uint64_t>> next_here = co_await scanner.FindValidRecordAfter(offset);
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
  Result<TailRepair> repair = co_await ZeroTailAfter(*in_.dir, *out_.segments[i], valid_end,
                                                     window_.get(), in_.zeros, in_.zeros_bytes);
  if (!repair.ok()) co_return repair.status();
  out_.dropped_bytes += repair->dropped_bytes;
  if (!repair->copy_path.empty()) Note("a copy of the dropped bytes is in " + repair->copy_path);
  if (!repair->copy_error.empty()) Note("no copy of the dropped bytes: " + repair->copy_error);
  co_return Status::OK();
}

// Where the log ends, the next open after a clean close checks that the
// block at the end of the active segment, and the first data block of each
// later segment, are zero (RecoverUpTo). The scan accepts less: garbage
// after a zero header, or damage without a valid record in the segments
// after a torn tail. So the full recovery zeroes what the check would
// refuse; otherwise every open after a clean close would refuse the marker
// and read the whole log again. (Both cases found by recovery_fuzz.)
Task<Status> ShardRecovery::ZeroAfterCleanEnd(size_t active) {
  for (size_t j = active; j < out_.segments.size(); ++j) {
    Segment& segment = *out_.segments[j];
    // Where the writer's next flush goes (as Run computes it): free space.
    const uint64_t start = segment.data_start_bytes();
    const uint64_t end = AlignUp(j == active ? std::max(segment.end_bytes, start) : start,
                                 segment.alignment_bytes());
    Result<bool> zero = co_await ZeroBlockAt(j, end);
    if (!zero.ok()) co_return zero.status();
    if (*zero) continue;
    Status s = RemoveStaleHint(segment.id());
    if (!s.ok()) co_return s;
    s = co_await RepairTail(j, end);
    if (!s.ok()) co_return s;
    Note(Where(j, end) + ": bytes without a valid record after the end of the log: zeroed");
  }
  co_return Status::OK();
}

Task<Status> ShardRecovery::DropSegmentsAfter(size_t i) {
  while (out_.segments.size() > i + 1) {
    std::unique_ptr<Segment> last = std::move(out_.segments.back());
    out_.segments.pop_back();
    const std::string path = last->path();
    // What it held. A segment is written in order from its first data
    // block, so a spare never written to is zero there: not read further.
    const uint64_t start = last->data_start_bytes();
    SegmentScanner scanner(*last, start, last->file_size_bytes, window_.get());
    Result<std::span<const uint8_t>> first = co_await scanner.Bytes(start, last->alignment_bytes());
    if (!first.ok()) co_return first.status();
    if (!std::all_of(first->begin(), first->end(), [](uint8_t b) { return b == 0; })) {
      Result<uint64_t> dirty_end = co_await DirtyEnd(scanner, *last, start);
      if (!dirty_end.ok()) co_return dirty_end.status();
      out_.dropped_bytes += *dirty_end - start;
    }
    Status s = RemoveStaleHint(last->id());
    if (!s.ok()) co_return s;
    last.reset();
    s = io::RemoveFileDurably(path);
    if (!s.ok()) co_return s;
    Note("deleted " + path);
  }
  co_return Status::OK();
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
  if (marker == nullptr) {
    s = co_await ZeroAfterCleanEnd(any_data_ ? last_data_index_ : 0);
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

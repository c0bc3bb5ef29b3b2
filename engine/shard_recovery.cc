// The parts of ShardRecovery (engine/shard_recovery.h) that read the log
// without deciding what damage means: opening the shard's segments, applying
// records to the index, loading hint files, and checking the log against the
// clean-close marker. The recovery policy is in engine/recovery.cc.
#include "engine/shard_recovery.h"

#include <algorithm>
#include <cassert>

#include "engine/hint_file.h"
#include "io/fs.h"

namespace dmalog::engine {

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

}  // namespace dmalog::engine

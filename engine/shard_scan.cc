// Shard: the reads that span many keys, Scan and Tail. Each takes its
// snapshot when called (in the shard's request order, from an
// OrderedRequest) and does its slow part, waiting for durability and
// reading the disk, in the task it returns.
#include <algorithm>
#include <cassert>
#include <utility>

#include "engine/aligned.h"
#include "engine/segment_scanner.h"
#include "engine/shard.h"
#include "scheduler/executor.h"

namespace dmalog::engine {
namespace {
// A scan reads its values with at most this many reads in flight per shard
// (each holds a pool buffer while it runs).
constexpr uint32_t kScanReadsInFlightMax = 32;
}  // namespace

Task<Result<std::vector<ScanHit>>> Shard::ScanKeys(std::string from, std::string to,
                                                   uint64_t max_keys) {
  std::vector<ScanHit> hits = ScanSnapshot(from, to, max_keys, /*with_pending=*/true);
  return FinishScanKeys(std::move(hits), writer_->sync_ticket(), std::move(from), std::move(to),
                        max_keys);
}

std::vector<ScanHit> Shard::ScanSnapshot(std::string_view from, std::string_view to,
                                         uint64_t max_keys, bool with_pending) const {
  std::vector<PendingEntry> pending;
  if (with_pending) pending = writer_->PendingInRange(from, to);
  std::vector<ScanHit> hits;
  size_t p = 0;  // The next pending write, in key order.
  // Takes pending writes before `key` (all, for nullopt) while there is room.
  const auto take_pending_before = [&](std::optional<std::string_view> key) {
    for (; p < pending.size() && hits.size() < max_keys && (!key || pending[p].key < *key); ++p) {
      if (pending[p].deleted) continue;
      hits.push_back(ScanHit{std::move(pending[p].key), std::nullopt, std::move(pending[p].value)});
    }
  };
  if (max_keys == 0) return hits;
  // Bounded by the index's keys from `from`, and stops at max_keys hits.
  index_->ForEachFrom(from, [&](std::string_view key, const IndexEntry& entry) {
    if (!to.empty() && key >= to) return false;
    take_pending_before(key);
    if (hits.size() >= max_keys) return false;
    if (p < pending.size() && pending[p].key == key) {
      // The unflushed write is later than the index's: a put replaces its
      // value, a delete hides the key.
      if (!pending[p].deleted) {
        hits.push_back(
            ScanHit{std::move(pending[p].key), std::nullopt, std::move(pending[p].value)});
      }
      ++p;
    } else {
      hits.push_back(ScanHit{std::string(key), entry, std::string()});
    }
    return hits.size() < max_keys;
  });
  take_pending_before(std::nullopt);
  return hits;
}

Task<Result<std::vector<ScanHit>>> Shard::FinishScanKeys(std::vector<ScanHit> hits, uint64_t ticket,
                                                         std::string from, std::string to,
                                                         uint64_t max_keys) {
  // A scan returns nothing a crash could take back: the unflushed writes
  // in its snapshot count only once durable.
  Status durable = co_await writer_->SyncTo(ticket);
  if (!durable.ok()) {
    // Their flush failed, so they will never be in the log. The shard is
    // read-only now and its index final: a read-only shard still scans.
    durable.IgnoreError();
    hits = ScanSnapshot(from, to, max_keys, /*with_pending=*/false);
  }
  co_return hits;
}

// A scan's value reads, shared by its reader tasks; lives in ReadHits's
// frame, which waits until every reader has ended.
struct Shard::ScanReads {
  std::vector<ScanHit> hits;
  std::vector<KeyValue> out;  // By hit index.
  size_t next = 0;            // The next hit to read.
  uint32_t readers = 0;       // Reader tasks still running.
  Status first_error;
  WaitList done;
};

Task<void> Shard::ScanReader(Shard* shard, ScanReads* reads) {
  // Bounded by the hits: each round takes the next one.
  while (reads->next < reads->hits.size() && reads->first_error.ok()) {
    const size_t i = reads->next++;
    ScanHit& hit = reads->hits[i];
    if (!hit.entry) {  // From a snapshot's unflushed writes.
      reads->out[i] = KeyValue{std::move(hit.key), std::move(hit.value)};
      continue;
    }
    Result<std::string> value = co_await shard->ReadValue(*hit.entry, hit.key);
    if (!value.ok()) {
      if (reads->first_error.ok()) reads->first_error = value.status();
      break;
    }
    reads->out[i] = KeyValue{std::move(hit.key), std::move(*value)};
  }
  assert(reads->readers > 0);
  if (--reads->readers == 0) reads->done.NotifyAll();
}

Task<Result<std::vector<KeyValue>>> Shard::ReadHits(std::vector<ScanHit> hits) {
  ScanReads reads;
  reads.hits = std::move(hits);
  reads.out.resize(reads.hits.size());
  reads.readers = static_cast<uint32_t>(std::min<size_t>(kScanReadsInFlightMax, reads.hits.size()));
  sched::Executor* executor = sched::Executor::Current();
  assert(executor != nullptr);
  const uint32_t readers = reads.readers;
  for (uint32_t r = 0; r < readers; ++r) {
    executor->Spawn(foreground_queue_, ScanReader(this, &reads));
  }
  while (reads.readers > 0) co_await reads.done.Wait();
  if (!reads.first_error.ok()) co_return reads.first_error;
  co_return std::move(reads.out);
}

Task<Result<std::vector<LogRecord>>> Shard::Tail(uint64_t from_sequence, uint64_t max_records) {
  return ReadTail(from_sequence, max_records, writer_->last_sequence(), writer_->sync_ticket());
}

namespace {

LogRecord::Type TypeOf(format::RecordType type) {
  return type == format::kPutType ? LogRecord::Type::kPut : LogRecord::Type::kDelete;
}

// The sequence of a data record's last entry (a batch takes one per entry).
uint64_t LastSequenceOf(const RecordView& r) {
  if (r.type != format::kBatchType) return r.sequence;
  Result<uint32_t> count = BatchReader(r.value).Count();
  return count.ok() && *count > 0 ? r.sequence + *count - 1 : r.sequence;
}

}  // namespace

Task<Result<std::vector<LogRecord>>> Shard::ReadTail(uint64_t from_sequence, uint64_t max_records,
                                                     uint64_t last_sequence, uint64_t ticket) {
  // The writes up to `last_sequence` are in the log once durable. A
  // read-only shard still reads its log (what it holds is all there is).
  (co_await writer_->SyncTo(ticket)).IgnoreError();
  std::vector<LogRecord> out;
  AlignedBuffer window = AllocateAligned(kScanWindowBytes);
  if (!window) co_return Status::IOError("out of memory allocating the tail window");
  const auto full = [&] { return out.size() >= max_records; };
  // The last sequence of the data records passed so far: sequences grow in
  // log order, as recovery checks (engine/recovery.cc).
  uint64_t passed_sequence = 0;
  for (const Segment* segment : writer_->Segments()) {
    if (segment->last_sequence < from_sequence) {  // Also skips empty ones.
      passed_sequence = std::max(passed_sequence, segment->last_sequence);
      continue;
    }
    SegmentScanner scanner(*segment, segment->data_start_bytes(), segment->end_bytes, window.get());
    // Bounded by the segment's end and by max_records.
    while (!full()) {
      Result<ScanItem> item = co_await scanner.Peek();
      if (!item.ok()) co_return item.status();
      if (item->outcome == DecodeOutcome::kZero) {
        // Unwritten space before the log's end is a hole the open skipped
        // in this mode (in the others, it refused to open).
        if (options_.recovery_mode != RecoveryMode::kSkipAnyCorruptedRecords) break;
        Result<std::optional<uint64_t>> next =
            co_await scanner.FindValidRecordFrom(item->offset_bytes + 1);
        if (!next.ok()) co_return next.status();
        if (!next->has_value()) break;
        scanner.Seek(**next);
        continue;
      }
      const RecordView& r = item->record;
      const bool carries_data = item->outcome == DecodeOutcome::kRecord &&
                                r.type >= format::kPutType && r.type <= format::kBatchType;
      // Damage, or a stale or misdirected block (a sequence that goes
      // backwards, as recovery judges it): the open skipped it in this mode
      // (it stays on disk), so tail does too; in the others the open failed.
      const char* damage = nullptr;
      if (item->outcome != DecodeOutcome::kRecord) {
        damage = DecodeOutcomeName(item->outcome);
      } else if (carries_data && r.sequence <= passed_sequence) {
        damage = "sequence number goes backwards";
      }
      if (damage != nullptr) {
        if (options_.recovery_mode != RecoveryMode::kSkipAnyCorruptedRecords) {
          co_return Status::Corruption("segment " + segment->path() + " offset " +
                                       std::to_string(item->offset_bytes) + ": " + damage);
        }
        Result<std::optional<uint64_t>> next =
            co_await scanner.FindValidRecordAfter(item->offset_bytes);
        if (!next.ok()) co_return next.status();
        if (!next->has_value()) break;
        scanner.Seek(**next);
        continue;
      }
      // Sequences grow in log order: the rest came after the call.
      if (r.sequence > last_sequence) co_return out;
      if (carries_data) passed_sequence = LastSequenceOf(r);
      if (r.type == format::kPutType || r.type == format::kDeleteType) {
        if (r.sequence >= from_sequence) {
          out.push_back(LogRecord{options_.shard, r.sequence, TypeOf(r.type), std::string(r.key),
                                  std::string(r.value)});
        }
      } else if (r.type == format::kBatchType) {
        BatchReader reader(r.value);
        for (uint64_t i = 0; !full(); ++i) {
          Result<BatchEntry> e = reader.Next();
          if (!e.ok()) break;
          if (r.sequence + i < from_sequence) continue;
          out.push_back(LogRecord{options_.shard, r.sequence + i, TypeOf(e->type),
                                  std::string(e->key), std::string(e->value)});
        }
      }
      scanner.Advance(r.encoded_bytes);
    }
    if (full()) break;
  }
  co_return out;
}

}  // namespace dmalog::engine

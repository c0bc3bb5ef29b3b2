#include "engine/log_writer.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "engine/aligned.h"
#include "scheduler/executor.h"

namespace dmalog::engine {
namespace {
// Appends that wait for room (a flush or a roll) before giving up; each wait
// is one flush, so this is far above any real need.
constexpr uint32_t kAppendWaitsMax = 1u << 20;
constexpr uint32_t kLargestRecordBytes =
    format::kRecordHeaderBytes + format::kKeyBytesMax + format::kBatchBytesMax;
// The flag a flush's first record carries in `segment`.
uint8_t FlushStartFlag(const Segment& segment) noexcept {
  return segment.marks_flush_starts() ? format::kRecordFlagFlushStart : 0;
}
}  // namespace

void LogWriter::Batch::Reset() {
  used_bytes = 0;
  segment = nullptr;
  offset_bytes = 0;
  records.clear();
  // Key by key, not latest.clear(): Abseil's clear() frees a table of more
  // than 127 slots, so every batch grew it again from nothing (allocations
  // and rehashes on the write path). The keys still point into this batch's
  // buffer, which is not reused before Reset returns.
  for (const Entry& e : entries) latest.erase(e.key);
  assert(latest.empty());
  entries.clear();
}

LogWriter::LogWriter(const LogWriterOptions& options, RecoveredShard& recovered, Index* index,
                     const io::Directory* dir, CallerReads* caller_reads)
    : options_(options),
      index_(index),
      dir_(dir),
      caller_reads_(caller_reads),
      segments_(std::move(recovered.segments)),
      pacer_(options.group_commit_linger_us) {
  assert(!segments_.empty() && recovered.active_index < segments_.size());
  for (const auto& segment : segments_) caller_reads_->Publish(segment.get());
  active_ = segments_[recovered.active_index].get();
  next_offset_bytes_ = recovered.write_offset_bytes;
  next_sequence_ = recovered.last_sequence + 1;
  stats_.segments = segments_.size();
}

LogWriter::~LogWriter() = default;

Status LogWriter::Init() {
  const uint32_t align = std::max<uint32_t>(Alignment(), 4096);
  // Sized for the largest alignment any segment may have, not the active
  // one's: a roll can move to a segment with a larger alignment (made on a
  // device with larger physical blocks), and a flush pads its batch up to
  // it. A multiple of every alignment, so the padding always fits.
  constexpr uint32_t kSlackBytes = format::kWriteAlignmentBytesMax;
  buffer_bytes_ = static_cast<uint32_t>(
      AlignUp(std::max<uint64_t>(options_.flush_bytes_max, kLargestRecordBytes + kSlackBytes),
              kSlackBytes));
  assert(buffer_bytes_ % align == 0);
  for (Batch& b : batches_) {
    b.buf.reset(static_cast<uint8_t*>(std::aligned_alloc(align, buffer_bytes_)));
    if (!b.buf) return Status::IOError("out of memory allocating the group-commit buffers");
    b.latest.reserve(1024);
    b.records.reserve(1024);
    b.entries.reserve(1024);
  }
  zeros_.reset(static_cast<uint8_t*>(std::aligned_alloc(align, kZerosBytes)));
  if (!zeros_) return Status::IOError("out of memory allocating the zero buffer");
  std::memset(zeros_.get(), 0, kZerosBytes);
  filling_->ticket = next_ticket_++;
  filling_->segment = active_;
  filling_->offset_bytes = next_offset_bytes_;
  return Status::OK();
}

uint32_t LogWriter::GapBefore(uint32_t used_bytes) const noexcept {
  // A record never starts in the last kRecordHeaderBytes - 1 bytes of an
  // aligned block: those bytes stay zero and readers skip them.
  const uint32_t rest = Alignment() - used_bytes % Alignment();
  return rest < format::kRecordHeaderBytes && rest != Alignment() ? rest : 0;
}

bool LogWriter::FitsSegment(uint64_t bytes) const noexcept {
  return filling_->offset_bytes + AlignUp(filling_->used_bytes + bytes, Alignment()) <=
         active_->size_bytes();
}

Status LogWriter::ReadOnlyStatus() const {
  return Status::ReadOnly(
      "shard " + std::to_string(options_.shard) + " refuses writes after an earlier error (" +
      read_only_cause().ToString() + "); reads still work; fix the cause and reopen the database");
}

void LogWriter::RefuseAppends(const Status& cause) {
  assert(!cause.ok());
  if (!failed_.ok() || !refused_.ok()) return;
  refused_ = cause.WithContext("a write acknowledged with sync=false was lost");
}

Result<uint64_t> LogWriter::TryAppend(format::RecordType type, std::string_view key,
                                      std::string_view value, uint32_t entries) {
  if (!failed_.ok() || !refused_.ok()) return ReadOnlyStatus();
  if (stopping_) return Status::Aborted("the database is closing");
  const uint64_t record_bytes = EncodedRecordBytes(key.size(), value.size());
  assert(record_bytes <= kLargestRecordBytes);
  const uint64_t size = GapBefore(filling_->used_bytes) + record_bytes;
  if (filling_->used_bytes + size > buffer_bytes_ || !FitsSegment(size)) {
    return Status::Busy("no room in the batch");
  }
  Encode(type, key, value, entries);
  work_.NotifyAll();
  return filling_->ticket;
}

Task<Result<uint64_t>> LogWriter::Append(format::RecordType type, std::string_view key,
                                         std::string_view value, uint32_t entries) {
  for (uint32_t wait = 0; wait < kAppendWaitsMax; ++wait) {
    Result<uint64_t> ticket = TryAppend(type, key, value, entries);
    if (ticket.ok() || !ticket.status().IsBusy()) co_return ticket;
    if (filling_->used_bytes == 0) {
      Status s = co_await Roll();
      if (!s.ok()) co_return s;
      continue;
    }
    work_.NotifyAll();
    co_await room_.Wait();
  }
  co_return Status::Busy("append waited too long for room in the log");
}

void LogWriter::Encode(format::RecordType type, std::string_view key, std::string_view value,
                       uint32_t entries) {
  Batch& b = *filling_;
  const uint32_t gap = GapBefore(b.used_bytes);
  std::memset(b.buf.get() + b.used_bytes, 0, gap);
  b.used_bytes += gap;
  const uint32_t off = b.used_bytes;
  const uint32_t size = static_cast<uint32_t>(EncodedRecordBytes(key.size(), value.size()));
  const uint64_t seq = next_sequence_;
  next_sequence_ += std::max<uint32_t>(entries, 1);
  uint8_t* p = b.buf.get() + off;
  // The first record of a batch starts its flush (one aligned write). A
  // version-1 segment (carried over from an older database) gets no flags,
  // so that the build that made it can still read it whole.
  const uint8_t flags = off == 0 ? FlushStartFlag(*b.segment) : 0;
  EncodeRecord(std::span<uint8_t>(p, size), b.segment->id(), type, seq, key, value, flags);
  const uint32_t record = static_cast<uint32_t>(b.records.size());
  b.records.push_back(RecordSpan{off, size});
  const char* stored = reinterpret_cast<const char*>(p + format::kRecordHeaderBytes);
  const std::string_view stored_key(stored, key.size());
  const std::string_view stored_value(stored + key.size(), value.size());
  if (type == format::kBatchType) {
    BatchReader reader(stored_value);
    for (uint32_t i = 0; i < entries; ++i) {
      Result<BatchEntry> e = reader.Next();
      assert(e.ok() && "WriteBatch built a malformed payload");
      if (!e.ok()) break;
      b.latest[e->key] = static_cast<uint32_t>(b.entries.size());
      b.entries.push_back(Entry{e->key, e->value, seq + i, record, e->type == format::kDeleteType});
    }
  } else {
    b.latest[stored_key] = static_cast<uint32_t>(b.entries.size());
    b.entries.push_back(Entry{stored_key, stored_value, seq, record, type == format::kDeleteType});
  }
  b.used_bytes += size;
}

Task<Status> LogWriter::Roll() {
  assert(filling_->used_bytes == 0);
  const uint64_t next_id = active_->id() + 1;
  // Bounded: each wait is one segment creation attempt by the preparer.
  for (uint32_t attempt = 0; attempt < kAppendWaitsMax; ++attempt) {
    // Checked first: once Stop has begun, the active segment never changes
    // (Stop's clean end and close record are in it).
    if (stopping_) co_return Status::Aborted("the database is closing");
    for (auto& segment : segments_) {
      if (segment->id() == next_id) {
        active_ = segment.get();
        filling_->segment = active_;
        filling_->offset_bytes = next_offset_bytes_ = active_->data_start_bytes();
        spare_wanted_.NotifyAll();  // Prepare the one after.
        rolled_.NotifyAll();        // The segment rolled past is sealed.
        co_return Status::OK();
      }
    }
    if (!spare_error_.ok() && attempt > 0) {
      Status cause = spare_error_;
      spare_error_ = Status::OK();  // The next append tries again.
      co_return cause.WithContext("shard " + std::to_string(options_.shard) +
                                  " cannot start a new segment; acknowledged data is safe; "
                                  "free space and retry");
    }
    spare_wanted_.NotifyAll();
    co_await spare_ready_.Wait();
  }
  co_return Status::Busy("waited too long for a new segment");
}

Task<void> LogWriter::PrepareLoop() {
  while (!stopping_) {
    const bool have_spares = segments_.back()->id() >= active_->id() + options_.spare_segments;
    if (have_spares) {
      co_await spare_wanted_.Wait();
      continue;
    }
    const uint64_t id = segments_.back()->id() + 1;
    Result<std::unique_ptr<Segment>> segment =
        co_await Segment::Create(*dir_, options_.shard, id, options_.segment_size_bytes,
                                 options_.file_options, zeros_.get(), kZerosBytes);
    if (segment.ok()) {
      segments_.push_back(std::move(*segment));
      caller_reads_->Publish(segments_.back().get());
      stats_.segments = segments_.size();
      spare_error_ = Status::OK();
      spare_ready_.NotifyAll();
    } else {
      spare_error_ = segment.status();
      spare_ready_.NotifyAll();
      // Retry only when a writer needs it. Stop() may have come while the
      // creation was in flight: its notification is gone, so check first.
      if (!stopping_) co_await spare_wanted_.Wait();
    }
  }
  preparer_done_ = true;
  stopped_.NotifyAll();
}

Task<void> LogWriter::FlushLoop() {
  for (;;) {
    while (filling_->used_bytes == 0 && !stopping_) co_await work_.Wait();
    if (filling_->used_bytes == 0) break;  // Stopping, and nothing queued.
    co_await Linger();
    co_await FlushOne();
  }
  flusher_done_ = true;
  acks_.NotifyAll();
  stopped_.NotifyAll();
}

Task<void> LogWriter::Linger() {
  const uint64_t until_ns =
      pacer_.LingerUntilNs(filling_->records.size(), sched::Executor::NowNs());
  // Bounded by the deadline (each step sleeps kLingerStepNs).
  while (until_ns != 0 && !stopping_ && pacer_.Wants(filling_->records.size()) &&
         sched::Executor::NowNs() < until_ns) {
    co_await sched::sleep_for(std::chrono::nanoseconds(FlushPacer::kLingerStepNs));
  }
}

Task<void> LogWriter::AckLoop() {
  // Runs after the flusher has handed its next write to the kernel: waking
  // a flush's writers (a futex wake each, for blocking callers) never delays
  // the next flush. Bounded by the flusher: one round per completed flush.
  for (;;) {
    CompleteDurableWaiters();
    durable_.NotifyAll();
    if (flusher_done_) break;
    co_await acks_.Wait();
  }
  acker_done_ = true;
  stopped_.NotifyAll();
}

Task<void> LogWriter::FlushOne() {
  std::swap(filling_, flushing_);
  Batch& batch = *flushing_;
  const uint64_t padded = AlignUp(batch.used_bytes, Alignment());
  const uint64_t gap = padded - batch.used_bytes;
  EncodeGap(std::span<uint8_t>(batch.buf.get() + batch.used_bytes, gap), batch.segment->id());
  next_offset_bytes_ = batch.offset_bytes + padded;
  filling_->Reset();
  filling_->ticket = next_ticket_++;
  filling_->segment = active_;
  assert(batch.segment == active_ && "a batch always targets the active segment");
  filling_->offset_bytes = next_offset_bytes_;
  flush_in_flight_ = true;
  room_.NotifyAll();
  Status s = failed_;
  if (s.ok()) {
    // RWF_DSYNC, not a write linked to an fdatasync (78 against 100 us at
    // the median, bench/io_write_bench): the range is all it must make
    // durable (the segment's size and extents were, at its creation).
    // Durable writes posted meanwhile wait for this flush, whose completion
    // wakes the executor: they need not (16 writers: eventfd wake-ups 0.47
    // -> 0.0007 a write, CPU per write -16%; c5bf419).
    sched::Executor::Current()->DeferWakes(true);
    const uint64_t start_ns = sched::Executor::NowNs();
    s = co_await batch.segment->file().WriteDsync(batch.buf.get(), padded, batch.offset_bytes);
    pacer_.Flushed(batch.records.size(), sched::Executor::NowNs() - start_ns);
    sched::Executor::Current()->DeferWakes(false);
  }
  flush_in_flight_ = false;
  if (s.ok()) {
    ApplyToIndex(batch);
    batch.segment->end_bytes = batch.offset_bytes + padded;
    durable_ticket_ = batch.ticket;
    ++stats_.flushes;
    stats_.records_flushed += batch.records.size();
    stats_.log_bytes += padded;
  } else {
    failed_ticket_ = std::min(failed_ticket_, batch.ticket);
    Fail(s);
  }
  // In the index now, or never: either way callers may read the index.
  caller_reads_->WritesSettled(batch.records.size());
  batch.Reset();
  acks_.NotifyAll();  // Runs once the flusher has started the next flush.
  room_.NotifyAll();
}

void LogWriter::Fail(Status cause) {
  if (failed_.ok()) failed_ = std::move(cause);
}

void LogWriter::ApplyToIndex(const Batch& batch) {
  assert(batch.segment->id() <= UINT32_MAX);
  const uint32_t segment_id = static_cast<uint32_t>(batch.segment->id());
  caller_reads_->BeginIndexChange();
  for (const Entry& e : batch.entries) {
    const RecordSpan& r = batch.records[e.record];
    const IndexEntry at{segment_id, static_cast<uint32_t>(batch.offset_bytes + r.offset_in_batch),
                        r.encoded_bytes, e.sequence};
    if (e.deleted) {
      index_->Erase(e.key, e.sequence).reset();
    } else {
      index_->Put(e.key, at).reset();
    }
    if (batch.segment->first_sequence == 0) batch.segment->first_sequence = e.sequence;
    batch.segment->last_sequence = e.sequence;
  }
  caller_reads_->EndIndexChange();
}

std::optional<Status> LogWriter::Settled(uint64_t ticket) const {
  if (ticket == failed_ticket_) return failed_;
  if (ticket > failed_ticket_) {
    return Status::ReadOnly("shard " + std::to_string(options_.shard) +
                            " stopped writing before this write was durable (" +
                            failed_.ToString() + ")");
  }
  if (durable_ticket_ >= ticket) return Status::OK();
  return std::nullopt;
}

Task<Status> LogWriter::WaitDurable(uint64_t ticket) {
  for (;;) {
    if (std::optional<Status> settled = Settled(ticket)) co_return std::move(*settled);
    co_await durable_.Wait();
  }
}

void LogWriter::NotifyWhenDurable(DurableWaiter* waiter) {
  if (std::optional<Status> settled = Settled(waiter->ticket)) {
    return waiter->done(waiter, std::move(*settled));
  }
  assert(waiters_tail_ == nullptr || waiters_tail_->ticket <= waiter->ticket);
  waiter->next = nullptr;
  if (waiters_tail_ != nullptr) {
    waiters_tail_->next = waiter;
  } else {
    waiters_head_ = waiter;
  }
  waiters_tail_ = waiter;
}

void LogWriter::CompleteDurableWaiters() {
  // Bounded by the number of registered waiters.
  while (waiters_head_ != nullptr) {
    std::optional<Status> settled = Settled(waiters_head_->ticket);
    if (!settled) break;
    DurableWaiter* waiter = waiters_head_;
    waiters_head_ = waiter->next;
    if (waiters_head_ == nullptr) waiters_tail_ = nullptr;
    waiter->done(waiter, std::move(*settled));
  }
}

uint64_t LogWriter::sync_ticket() const noexcept {
  return filling_->used_bytes > 0 ? filling_->ticket : filling_->ticket - 1;
}

Task<Status> LogWriter::Sync() {
  const uint64_t ticket = sync_ticket();
  // Nothing to wait for: the writer's error, if it has one.
  if (ticket == 0 || (ticket <= durable_ticket_ && !flush_in_flight_)) co_return failed_;
  co_return co_await SyncTo(ticket);
}

Task<Status> LogWriter::SyncTo(uint64_t ticket) {
  work_.NotifyAll();
  co_return co_await WaitDurable(ticket);
}

Task<void> LogWriter::Stop() {
  stopping_ = true;
  work_.NotifyAll();
  spare_wanted_.NotifyAll();
  spare_ready_.NotifyAll();
  room_.NotifyAll();
  rolled_.NotifyAll();
  while (!flusher_done_ || !preparer_done_ || !acker_done_) co_await stopped_.Wait();
  if (!failed_.ok()) co_return;
  // Roll never switches active_ once stopping_ is set; taken before any
  // await all the same.
  const CleanEnd end{active_->id(), next_offset_bytes_, last_sequence()};
  if (stats_.flushes == 0) {
    clean_end_ = end;
    co_return;
  }
  // Every acknowledged record is durable without it; it lets the next open
  // tell damage to the last flush from a torn write. On failure, the close
  // is not clean: no marker, and the next open reads the whole log.
  Result<uint64_t> closed = co_await WriteCloseRecord();
  if (!closed.ok()) co_return;
  clean_end_ = CleanEnd{end.segment_id, *closed, end.last_sequence};
}

Task<Result<uint64_t>> LogWriter::WriteCloseRecord() {
  const uint32_t align = Alignment();
  Segment* segment = active_;  // Both taken before the await (see Stop).
  const uint64_t at = next_offset_bytes_;
  // No room in the active segment: the next write rolls to a new one, and
  // the segment keeps its torn-tail reading (as before close records).
  if (at + align > segment->size_bytes()) co_return at;
  Batch& b = *filling_;  // Empty: the flushers have ended.
  assert(b.used_bytes == 0 && b.segment == segment && b.offset_bytes == at);
  uint8_t* p = b.buf.get();
  EncodeClose(std::span<uint8_t>(p, format::kRecordHeaderBytes), segment->id(), next_sequence_ - 1,
              FlushStartFlag(*segment));
  EncodeGap(std::span<uint8_t>(p + format::kRecordHeaderBytes, align - format::kRecordHeaderBytes),
            segment->id());
  Status s = co_await segment->file().WriteDsync(p, align, at);
  assert(active_ == segment && "Roll switched segments during Stop");
  if (!s.ok()) co_return s;
  co_return at + align;
}

std::optional<PendingValue> LogWriter::FindPending(std::string_view key) const {
  for (const Batch* b : {filling_, flushing_}) {
    if (b->entries.empty()) continue;  // Most gets: no key to hash.
    auto it = b->latest.find(key);
    if (it != b->latest.end()) {
      const Entry& e = b->entries[it->second];
      return PendingValue{e.deleted, e.value};
    }
  }
  return std::nullopt;
}

std::vector<PendingEntry> LogWriter::PendingInRange(std::string_view from,
                                                    std::string_view to) const {
  std::vector<const Entry*> latest;
  const auto in_range = [&](std::string_view key) {
    return key >= from && (to.empty() || key < to);
  };
  // The filling batch's write to a key is later than the flushing one's.
  for (const auto& [key, i] : filling_->latest) {
    if (in_range(key)) latest.push_back(&filling_->entries[i]);
  }
  for (const auto& [key, i] : flushing_->latest) {
    if (in_range(key) && !filling_->latest.contains(key)) {
      latest.push_back(&flushing_->entries[i]);
    }
  }
  std::sort(latest.begin(), latest.end(),
            [](const Entry* a, const Entry* b) { return a->key < b->key; });
  std::vector<PendingEntry> out;
  out.reserve(latest.size());
  for (const Entry* e : latest) {
    out.push_back(PendingEntry{std::string(e->key), e->deleted,
                               e->deleted ? std::string() : std::string(e->value)});
  }
  return out;
}

const Segment* LogWriter::FindSegment(uint64_t id) const {
  // segments_ is sorted by id (recovery opens them in order; new ones are
  // appended with the next id).
  auto it =
      std::lower_bound(segments_.begin(), segments_.end(), id,
                       [](const std::unique_ptr<Segment>& s, uint64_t v) { return s->id() < v; });
  return it != segments_.end() && (*it)->id() == id ? it->get() : nullptr;
}

std::vector<const Segment*> LogWriter::Segments() const {
  std::vector<const Segment*> out;
  for (const auto& s : segments_) out.push_back(s.get());
  return out;
}

}  // namespace dmalog::engine

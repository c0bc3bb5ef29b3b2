#include "engine/shard.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "engine/aligned.h"
#include "engine/segment_scanner.h"
#include "io/buffer_pool.h"
#include "scheduler/executor.h"

namespace dmalog::engine {
namespace {
constexpr uint32_t kZeroBufferBytes = 1u << 20;
// Stop's waits for the self-message FIFO to drain: far more batches than
// the calls a task can have queued.
constexpr uint32_t kStopSelfMessageWaitsMax = 1u << 20;
}  // namespace

Shard::Shard(ShardOptions options, io::Directory dir)
    : options_(std::move(options)),
      dir_(std::move(dir)),
      caller_reads_(options_.read_on_calling_thread) {}

Shard::~Shard() = default;

Task<Result<std::unique_ptr<Shard>>> Shard::Open(ShardOptions options) {
  Status s = io::CreateDirectories(options.dir);
  if (!s.ok()) co_return s;
  Result<io::Directory> dir = io::Directory::Open(options.dir);
  if (!dir.ok()) co_return dir.status();
  std::unique_ptr<Shard> shard(new Shard(options, std::move(*dir)));
  AlignedBuffer zeros = AllocateAligned(kZeroBufferBytes);
  if (!zeros) co_return Status::IOError("out of memory allocating the zero buffer");
  std::memset(zeros.get(), 0, kZeroBufferBytes);
  RecoveryInput in;
  in.shard = options.shard;
  in.dir = &shard->dir_;
  in.mode = options.recovery_mode;
  in.file_options = options.file_options;
  in.segment_size_bytes = options.segment_size_bytes;
  in.zeros = zeros.get();
  in.zeros_bytes = kZeroBufferBytes;
  in.use_hint_files = options.use_hint_files;
  Result<RecoveredShard> recovered = co_await RecoverShard(in);
  if (!recovered.ok())
    co_return recovered.status().WithContext("recovering shard " + std::to_string(options.shard));
  shard->index_ = std::move(recovered->index);
  shard->recovered_records_ = recovered->records;
  shard->recovery_dropped_bytes_ = recovered->dropped_bytes;
  shard->recovery_note_ = recovered->note;
  shard->segments_loaded_from_hints_ = recovered->segments_loaded_from_hints;
  shard->recovery_read_bytes_ = recovered->read_bytes;
  shard->used_clean_marker_ = recovered->used_clean_marker;
  LogWriterOptions wo;
  wo.shard = options.shard;
  wo.segment_size_bytes = options.segment_size_bytes;
  wo.flush_bytes_max = options.flush_bytes_max;
  wo.spare_segments = options.spare_segments;
  wo.group_commit_linger_us = options.group_commit_linger_us;
  wo.file_options = options.file_options;
  shard->writer_ = std::make_unique<LogWriter>(wo, *recovered, shard->index_.get(), &shard->dir_,
                                               &shard->caller_reads_);
  s = shard->writer_->Init();
  if (!s.ok()) co_return s;
  shard->hints_ = std::make_unique<HintWriter>(options.shard, &shard->dir_, shard->writer_.get(),
                                               recovered->hinted_segment_ids);
  co_return std::move(shard);
}

void Shard::StartLoops(uint32_t foreground_queue, uint32_t background_queue) {
  foreground_queue_ = foreground_queue;
  sched::Executor* executor = sched::Executor::Current();
  assert(executor != nullptr);
  executor->Spawn(foreground_queue, writer_->FlushLoop());
  executor->Spawn(foreground_queue, writer_->AckLoop());
  executor->Spawn(background_queue, writer_->PrepareLoop());
  executor->Spawn(background_queue, hints_->Loop());
}

Task<Status> Shard::Stop() {
  // Calls this executor's own thread made before Close shut the gate may
  // still wait in its self-message FIFO, which the executor runs in batches,
  // not all ahead of Close's message: let every one reach the shard first.
  // Bounded: the gate is closed, so no call adds to it; each wait lets the
  // loop run one batch.
  for (uint32_t waits = 0;
       waits < kStopSelfMessageWaitsMax && sched::Executor::Current()->has_self_messages();
       ++waits) {
    co_await sched::sleep_for(std::chrono::microseconds(1));
  }
  // Writes stalled for buffer room or a new segment were accepted (a
  // sync=false one was even acknowledged), so they go into the log before
  // it stops, and requests already started finish. Bounded: the flush and
  // prepare loops still run, and Close lets no new request in behind its
  // own message (engine/op_gate.h).
  co_await WaitForStalled();
  assert(!HasStalled());
  while (gets_in_flight_ > 0) co_await gets_done_.Wait();
  co_await writer_->Stop();
  co_await hints_->Stop();
  if (std::optional<CleanEnd> end = writer_->clean_end()) {
    // An optimisation for the next open, which reads the whole log without
    // it: a failure to write it costs time, never data.
    (co_await WriteCleanMarker(dir_, options_.shard, *end)).IgnoreError();
  }
  const Status& cause = writer_->read_only_cause();
  if (cause.ok()) co_return Status::OK();
  assert(!cause.IsAborted() && "Close tells a gone executor by Aborted");
  co_return cause.WithContext("shard " + std::to_string(options_.shard) +
                              " had refused writes since");
}

void Shard::NoteWriteStatus() {
  if (!writer_->read_only_cause().ok()) read_only_.store(true, std::memory_order_release);
}

void Shard::OnDurable(DurableWaiter* waiter, Status status) {
  auto* request = static_cast<WriteRequest*>(waiter->owner);
  request->shard->NoteWriteStatus();
  request->status = std::move(status);
  request->complete(request);
}

void Shard::Submit(WriteRequest* request) {
  Status s = CheckKeyValueLimits(
      request->key, request->type == format::kBatchType ? std::string_view() : request->value);
  if (!s.ok()) {
    caller_reads_.WritesSettled(1);
    request->status = std::move(s);
    return request->complete(request);
  }
  if (!HasStalled()) {
    Result<uint64_t> ticket =
        writer_->TryAppend(request->type, request->key, request->value, request->entries);
    if (ticket.ok() || !ticket.status().IsBusy()) return Appended(request, std::move(ticket));
  }
  request->stalled = StalledLink{.write = request};
  Stall(&request->stalled);
}

void Shard::Submit(GetRequest* request) {
  if (!HasStalled()) return StartGet(request);
  request->stalled = StalledLink{.get = request};
  Stall(&request->stalled);
}

void Shard::Submit(OrderedRequest* request) {
  if (!HasStalled()) return request->start(request);
  request->stalled = StalledLink{.ordered = request};
  Stall(&request->stalled);
}

void Shard::Appended(WriteRequest* request, Result<uint64_t> ticket) {
  if (!ticket.ok()) {
    caller_reads_.WritesSettled(1);
    // Aborted: the engine is closing, and Close reports the loss
    // (DeferredErrors); no write can follow it.
    if (request->acknowledged && !ticket.status().IsAborted()) {
      writer_->RefuseAppends(ticket.status());
    }
    NoteWriteStatus();
    request->status = std::move(ticket).status();
    return request->complete(request);
  }
  if (!request->sync) {
    request->status = Status::OK();
    return request->complete(request);
  }
  request->durable.ticket = *ticket;
  request->durable.done = &Shard::OnDurable;
  request->durable.owner = request;
  writer_->NotifyWhenDurable(&request->durable);
}

void Shard::StartGet(GetRequest* request) {
  if (std::optional<PendingValue> pending = writer_->FindPending(request->key)) {
    request->result = pending->deleted ? Result<std::string>(Status::NotFound(request->key))
                                       : Result<std::string>(std::string(pending->value));
    return request->complete(request);
  }
  std::optional<IndexEntry> entry = index_->Find(request->key);
  if (!entry) {
    request->result = Status::NotFound(request->key);
    return request->complete(request);
  }
  // The get takes effect here: the read task does not search the index
  // again (a second B-tree search per get).
  ++gets_in_flight_;
  sched::Executor::Current()->Spawn(foreground_queue_, ReadFound(this, request, *entry));
}

void Shard::Stall(StalledLink* link) {
  assert(link->next == nullptr);
  if (stalled_tail_ != nullptr) {
    stalled_tail_->next = link;
  } else {
    stalled_head_ = link;
  }
  stalled_tail_ = link;
  ++stalled_in_;
  if (draining_) return;
  draining_ = true;
  sched::Executor::Current()->Spawn(foreground_queue_, DrainStalled(this));
}

Task<void> Shard::DrainStalled(Shard* shard) {
  assert(shard->draining_);
  // Bounded by the queue: each turn serves one request, and Close lets no
  // new request in once it has begun (engine/op_gate.h).
  while (StalledLink* link = shard->stalled_head_) {
    shard->stalled_head_ = link->next;
    if (shard->stalled_head_ == nullptr) shard->stalled_tail_ = nullptr;
    link->next = nullptr;
    if (WriteRequest* request = link->write) {
      shard->Appended(request, co_await shard->writer_->Append(request->type, request->key,
                                                               request->value, request->entries));
    } else if (GetRequest* request = link->get) {
      shard->StartGet(request);
    } else {
      assert(link->ordered != nullptr);
      link->ordered->start(link->ordered);
    }
    ++shard->stalled_out_;
    assert(shard->stalled_out_ <= shard->stalled_in_);
    shard->unstalled_.NotifyAll();
    // A long queue (each step cheap) must not hold the queue's time slice.
    co_await sched::maybe_yield();
  }
  assert(!shard->HasStalled());
  shard->draining_ = false;
}

Task<void> Shard::WaitForStalled() {
  // Bounded: the queue is served in order, so this waits only for the
  // requests before it, however many stall after it.
  const uint64_t target = stalled_in_;
  while (stalled_out_ < target) co_await unstalled_.Wait();
}

void Shard::GetDone(GetRequest* request) {
  request->complete(request);
  assert(gets_in_flight_ > 0);
  if (--gets_in_flight_ == 0) gets_done_.NotifyAll();
}

Task<void> Shard::ReadFound(Shard* shard, GetRequest* request, IndexEntry entry) {
  request->result = co_await shard->ReadValue(entry, request->key);
  shard->GetDone(request);
}

Task<Result<std::string>> Shard::ReadValue(const IndexEntry& entry, std::string_view key) {
  const Segment* segment = writer_->FindSegment(entry.segment_id);
  if (segment == nullptr) {
    co_return Status::Corruption("shard " + std::to_string(options_.shard) +
                                 ": the index points at missing segment " +
                                 std::to_string(entry.segment_id));
  }
  const uint32_t align = segment->alignment_bytes();
  const uint64_t start = AlignDown(entry.offset_bytes, align);
  const uint64_t length = AlignUp(entry.offset_bytes + entry.record_bytes, align) - start;
  io::BufferPool& pool = io::Reactor::Current()->buffer_pool();
  // One aligned read into a pool buffer; records larger than a pool buffer
  // (values over ~120 KiB) use a buffer of their own.
  std::optional<io::Buffer> pooled;
  AlignedBuffer own;
  uint8_t* buf = nullptr;
  int32_t buf_index = -1;
  if (length <= pool.size_bytes()) {
    pooled = co_await pool.Acquire();
    buf = pooled->data;
    buf_index = pooled->index;
  } else {
    own = AllocateAligned(length);
    if (!own)
      co_return Status::IOError("out of memory reading a " + std::to_string(length) +
                                "-byte record");
    buf = own.get();
  }
  io::IoAwaitable read = segment->file().Read(buf, length, start, buf_index);
  Status s = co_await read;
  Result<std::string> out =
      s.ok() ? RecordValueFromRead(*segment, entry, key,
                                   std::span<const uint8_t>(buf, read.done_bytes()), start)
             : Result<std::string>(std::move(s));
  if (pooled) pool.Release(*pooled);
  co_return out;
}

Task<Status> Shard::Sync() {
  // Called at its place in the shard's order (an OrderedRequest), so every
  // write before it, stalled ones included, has its ticket already.
  return writer_->SyncTo(writer_->sync_ticket());
}

ShardStats Shard::Stats() const {
  ShardStats s;
  s.shard = options_.shard;
  s.keys = index_->size();
  s.last_sequence = writer_->last_sequence();
  s.segments = writer_->stats().segments;
  s.log_bytes = writer_->stats().log_bytes;
  s.flushes = writer_->stats().flushes;
  s.records_flushed = writer_->stats().records_flushed;
  s.index_memory_bytes = index_->memory_bytes();
  s.index_overhead_bytes_per_key = index_->overhead_bytes_per_key();
  s.recovered_records = recovered_records_;
  s.recovery_dropped_bytes = recovery_dropped_bytes_;
  s.recovery_note = recovery_note_;
  s.recovery_read_bytes = recovery_read_bytes_;
  s.opened_after_clean_close = used_clean_marker_;
  s.segments_loaded_from_hints = segments_loaded_from_hints_;
  s.gets_on_calling_thread = caller_reads_.gets();
  s.index_change_wait_us_max = caller_reads_.index_change_wait_ns_max() / 1000;
  s.hints_written = hints_->stats().written;
  s.hint_write_failures = hints_->stats().failures;
  if (const Segment* first = writer_->Segments().front()) {
    s.direct_io = first->file().direct_io();
    s.write_alignment_bytes = first->alignment_bytes();
  }
  if (!writer_->read_only_cause().ok()) s.read_only_cause = writer_->read_only_cause().ToString();
  return s;
}

}  // namespace dmalog::engine

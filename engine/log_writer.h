// LogWriter: one shard's append path, with group commit.
//
// Records are encoded into the FILLING batch (an aligned buffer). A single
// flusher coroutine takes the filling batch whenever no flush is in flight,
// pads it to the segment's write alignment and writes it with one O_DIRECT
// write flagged RWF_DSYNC (durable when it completes). Every record that
// arrived while the previous flush was in flight therefore goes out in the
// next one. Only after that flush succeeds are its records applied to the
// index and their writers acknowledged.
//
// Every segment it holds stays open, at the same address, until the writer
// is destroyed: gets read them from other threads (engine/caller_reads.h).
//
// A flush always starts at an aligned offset after the previous one, so no
// write touches a block that holds acknowledged data (docs/format.md).
//
// A failed write or fdatasync is never retried as if the data were safe: the
// writer becomes read-only, every waiting and later write gets the error
// naming the cause, and reads keep working (the PostgreSQL fsync lesson).
//
// Executor-thread only.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/aligned.h"
#include "engine/caller_reads.h"
#include "engine/clean_marker.h"
#include "engine/flush_pacer.h"
#include "engine/index.h"
#include "engine/record.h"
#include "engine/recovery.h"
#include "engine/segment.h"
#include "engine/wait_list.h"
#include "io/fs.h"

namespace dmalog::engine {

struct LogWriterOptions {
  uint32_t shard = 0;
  uint64_t segment_size_bytes = 0;
  uint32_t flush_bytes_max = 1u << 20;
  uint32_t spare_segments = 1;          // Options::segments_preallocated.
  uint32_t group_commit_linger_us = 0;  // Options::group_commit_linger_us.
  io::DmaFileOptions file_options;
};

// A write not yet flushed, for read-your-writes.
struct PendingValue {
  bool deleted = false;
  std::string_view value;  // Valid until the writer next suspends.
};

// A copy of the latest unflushed write to a key, for a scan's snapshot.
struct PendingEntry {
  std::string key;
  bool deleted = false;
  std::string value;
};

// Registered with NotifyWhenDurable: `done` runs on the executor thread
// once batch `ticket` is durable (OK) or has failed (its error). The waiter
// lives with its owner (a request), which must outlive the call.
struct DurableWaiter {
  uint64_t ticket = 0;
  void (*done)(DurableWaiter* waiter, Status status) = nullptr;
  void* owner = nullptr;
  DurableWaiter* next = nullptr;
};

struct LogWriterStats {
  uint64_t flushes = 0;
  uint64_t records_flushed = 0;
  uint64_t log_bytes = 0;
  uint64_t segments = 0;
};

class LogWriter {
 public:
  // Takes the recovered segments; `index`, `dir` and `caller_reads` are
  // borrowed for the writer's life (all owned by the Shard). The writer
  // changes the index only inside caller_reads' BeginIndexChange and
  // EndIndexChange, settles each record's write once the record is in the
  // index or its flush failed, and publishes every segment it holds.
  LogWriter(const LogWriterOptions& options, RecoveredShard& recovered, Index* index,
            const io::Directory* dir, CallerReads* caller_reads);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Allocates the buffers; call once before use.
  Status Init();

  // The flusher: runs until Stop(). Spawn it on the foreground queue.
  Task<void> FlushLoop();
  // Acknowledges the writers of completed flushes; spawn with FlushLoop, in
  // the same queue.
  Task<void> AckLoop();
  // Creates spare segments ahead of need; spawn it on a background queue.
  Task<void> PrepareLoop();
  // Flushes what is queued, ends the loops, and (if this writer flushed
  // anything) writes a close record after the last flush.
  Task<void> Stop();
  // After Stop(): where the log ends, when everything this writer took is
  // durable and its close record (if it owed one) was written; nullopt
  // otherwise. Shard::Stop records it in the clean-close marker.
  std::optional<CleanEnd> clean_end() const noexcept { return clean_end_; }

  // Appends a put, delete or batch record (`entries` sub-records for a
  // batch, else 1) and returns its batch's ticket. `key` and `value` are
  // copied into the batch buffer; they must stay valid until this returns.
  Task<Result<uint64_t>> Append(format::RecordType type, std::string_view key,
                                std::string_view value, uint32_t entries);
  // Appends without suspending: the ticket, or Busy when the record must wait
  // for room (a flush or a segment roll); the caller then uses Append.
  Result<uint64_t> TryAppend(format::RecordType type, std::string_view key, std::string_view value,
                             uint32_t entries);
  // Calls waiter->done once its ticket is durable or failed (at once if it
  // already is). Waiters must be registered in ticket order.
  void NotifyWhenDurable(DurableWaiter* waiter);
  // Waits until the batch `ticket` is durable; its error otherwise.
  Task<Status> WaitDurable(uint64_t ticket);
  // Waits until everything appended so far is durable.
  Task<Status> Sync();
  // What Sync would wait for if called now: the ticket of the last batch
  // holding a record (0: none yet).
  uint64_t sync_ticket() const noexcept;
  // Waits until batch `ticket` (from sync_ticket) is durable: OK once it
  // is, even if a later flush failed; its error if it failed.
  Task<Status> SyncTo(uint64_t ticket);

  std::optional<PendingValue> FindPending(std::string_view key) const;
  // The latest unflushed write to each key in [from, to) (to empty: no end),
  // in key order.
  std::vector<PendingEntry> PendingInRange(std::string_view from, std::string_view to) const;
  const Segment* FindSegment(uint64_t id) const;
  // Segments in id order (for tail).
  std::vector<const Segment*> Segments() const;
  // Why writes are refused: a failed flush (the shard is read-only), or an
  // acknowledged write that was lost (RefuseAppends). OK while writable.
  const Status& read_only_cause() const noexcept { return failed_.ok() ? refused_ : failed_; }
  // A write acknowledged before the shard took it (sync = false) failed:
  // later appends are refused, so that no later write lands after the hole
  // it left. What is queued still goes out. No effect once refused or failed.
  void RefuseAppends(const Status& cause);
  // For the hint writer (engine/hint_file.h): segments below the active one
  // are sealed (Sync() makes their last flush durable).
  uint64_t active_segment_id() const noexcept { return active_->id(); }
  bool stopping() const noexcept { return stopping_; }
  // Resumes after the next roll to a new segment, or Stop().
  WaitList::Awaiter WaitForRoll() noexcept { return rolled_.Wait(); }
  uint64_t last_sequence() const noexcept { return next_sequence_ - 1; }
  const LogWriterStats& stats() const noexcept { return stats_; }

 private:
  struct Entry {  // One put/delete (a batch contributes several).
    std::string_view key;
    std::string_view value;
    uint64_t sequence;
    uint32_t record;  // Index into Batch::records.
    bool deleted;
  };
  struct RecordSpan {
    uint32_t offset_in_batch;
    uint32_t encoded_bytes;
  };
  struct Batch {
    std::unique_ptr<uint8_t, AlignedFree> buf;
    uint32_t used_bytes = 0;
    uint64_t ticket = 0;
    Segment* segment = nullptr;
    uint64_t offset_bytes = 0;
    std::vector<RecordSpan> records;
    std::vector<Entry> entries;
    absl::flat_hash_map<std::string_view, uint32_t> latest;  // key -> entry
    void Reset();
  };

  uint32_t Alignment() const noexcept { return active_->alignment_bytes(); }
  bool FitsSegment(uint64_t bytes) const noexcept;
  uint32_t GapBefore(uint32_t used_bytes) const noexcept;
  Task<Status> Roll();
  void Encode(format::RecordType type, std::string_view key, std::string_view value,
              uint32_t entries);
  // Waits while the flush pacer wants more records queued (bounded).
  Task<void> Linger();
  Task<void> FlushOne();
  // Writes a close record (format::kCloseType) in the next aligned block.
  // The end of the log after the close record (where it would have gone
  // when the segment has no room for it).
  Task<Result<uint64_t>> WriteCloseRecord();
  void ApplyToIndex(const Batch& batch);
  void Fail(Status cause);
  // The status of `ticket` if it is settled (durable or failed), else nullopt.
  std::optional<Status> Settled(uint64_t ticket) const;
  void CompleteDurableWaiters();
  Status ReadOnlyStatus() const;

  const LogWriterOptions options_;
  Index* const index_;
  const io::Directory* const dir_;
  CallerReads* const caller_reads_;
  std::vector<std::unique_ptr<Segment>> segments_;  // By id; owned.
  Segment* active_ = nullptr;
  uint32_t buffer_bytes_ = 0;
  std::unique_ptr<uint8_t, AlignedFree> zeros_;
  static constexpr uint32_t kZerosBytes = 1u << 20;

  Batch batches_[2];
  Batch* filling_ = &batches_[0];
  Batch* flushing_ = &batches_[1];
  bool flush_in_flight_ = false;
  FlushPacer pacer_;
  uint64_t next_offset_bytes_ = 0;  // Where the filling batch goes.
  uint64_t next_ticket_ = 1;
  uint64_t durable_ticket_ = 0;  // Every ticket <= this is durable.
  uint64_t next_sequence_ = 1;
  Status failed_;   // Non-OK once read-only.
  Status refused_;  // Non-OK once an acknowledged write was lost.
  uint64_t failed_ticket_ = UINT64_MAX;
  bool stopping_ = false;
  bool flusher_done_ = false;
  bool preparer_done_ = false;
  bool acker_done_ = false;

  WaitList work_;                          // The flusher waits for records.
  WaitList room_;                          // Appenders wait for buffer room / a taken batch.
  WaitList durable_;                       // Writers wait for their ticket.
  WaitList acks_;                          // The acker waits for a completed flush.
  WaitList spare_ready_;                   // The writer waits for a spare segment.
  WaitList spare_wanted_;                  // The preparer waits for a request.
  Status spare_error_;                     // Why the last spare could not be created.
  WaitList stopped_;                       // Stop() waits for the loops.
  WaitList rolled_;                        // The hint writer waits for a roll.
  DurableWaiter* waiters_head_ = nullptr;  // FIFO, in ticket order.
  DurableWaiter* waiters_tail_ = nullptr;
  LogWriterStats stats_;
  std::optional<CleanEnd> clean_end_;  // Set by Stop().
};

}  // namespace dmalog::engine

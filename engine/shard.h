// Shard: one executor's slice of the database: its directory, log writer,
// index and read path. Created, used and destroyed on its executor's thread;
// the Engine reaches it through messages, except for the calls marked "any
// thread" (a blocking get's read on the calling thread, engine/caller_reads.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/options.h"
#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/caller_reads.h"
#include "engine/hint_file.h"
#include "engine/index.h"
#include "engine/log_writer.h"
#include "engine/requests.h"
#include "io/fs.h"

namespace dmalog::engine {

struct ShardOptions {
  uint32_t shard = 0;
  std::string dir;  // DB/shard-NNN
  uint64_t segment_size_bytes = 0;
  uint32_t flush_bytes_max = 0;
  uint32_t spare_segments = 1;          // Options::segments_preallocated.
  uint32_t group_commit_linger_us = 0;  // Options::group_commit_linger_us.
  RecoveryMode recovery_mode = RecoveryMode::kTolerateCorruptedTailRecords;
  io::DmaFileOptions file_options;
  bool use_hint_files = false;         // Options::use_hint_files.
  bool read_on_calling_thread = true;  // Options::read_on_calling_thread.
};

// A key a scan's snapshot found: where its value is on disk, or (for a
// write not yet flushed when the snapshot was taken) the value itself.
struct ScanHit {
  std::string key;
  std::optional<IndexEntry> entry;
  std::string value;  // When !entry.
};

class Shard {
 public:
  // Opens the shard's directory and recovers it. Call on its executor.
  static Task<Result<std::unique_ptr<Shard>>> Open(ShardOptions options);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Starts the flusher (in `foreground_queue`), the segment preparer and the
  // hint writer (in `background_queue`); the executor owns the spawned tasks.
  void StartLoops(uint32_t foreground_queue, uint32_t background_queue);
  // Flushes what is queued and ends the loops. Returns the error that made
  // the shard refuse writes, if one did (a failed flush may have taken
  // writes acknowledged with sync = false with it); never Aborted.
  Task<Status> Stop();

  // Serves a request posted as a message (engine/requests.h): synchronously
  // when possible, else through a coroutine in the foreground queue.
  // Executor thread, outside any task.
  void Submit(WriteRequest* request);
  void Submit(GetRequest* request);
  void Submit(OrderedRequest* request);
  // Any thread: a write for this shard is about to be posted to it (or, on
  // its executor, submitted). Every write must be announced, or a blocking
  // get could read the index before the write is in it.
  void WriteComing() noexcept { caller_reads_.WriteComing(); }
  // Any thread but the executor's, after Open returned and before Stop: a
  // blocking get served on the calling thread (its value, NotFound, or the
  // read's error), or nullopt when it must be posted (CallerReads::TryGet).
  [[nodiscard]] std::optional<Result<std::string>> TryGetOnCaller(std::string_view key) {
    return caller_reads_.TryGet(*index_, key);
  }
  // True once a write error made the shard read-only. Any thread.
  bool read_only() const noexcept { return read_only_.load(std::memory_order_acquire); }
  // What the open's recovery dropped, and why; set by Open, then fixed, so
  // any thread may read them once Open has returned.
  uint64_t recovery_dropped_bytes() const noexcept { return recovery_dropped_bytes_; }
  const std::string& recovery_note() const noexcept { return recovery_note_; }

  // Up to `max_keys` keys in [from, to) (to empty: no end), in key order.
  // Not a coroutine: the call takes the scan's snapshot (the index, with
  // the unflushed writes over it), so a scan started from an
  // OrderedRequest sees exactly the writes queued before it. The task
  // waits until those writes are durable and yields the hits; ReadHits
  // then reads the values of the ones the merge keeps.
  Task<Result<std::vector<ScanHit>>> ScanKeys(std::string from, std::string to, uint64_t max_keys);
  // The values of `hits` (from ScanKeys on this shard), in their order,
  // with several reads in flight. The segments the entries name are never
  // removed while the shard is open.
  Task<Result<std::vector<KeyValue>>> ReadHits(std::vector<ScanHit> hits);
  // Records with sequence >= from, in log order, at most `max_records`,
  // none later than the last write queued before the call (not a
  // coroutine either; the task waits for durability and reads the log).
  Task<Result<std::vector<LogRecord>>> Tail(uint64_t from_sequence, uint64_t max_records);
  ShardStats Stats() const;
  // Waits until every record appended before the call is durable; the
  // shard's write error otherwise. Not a coroutine: call it where the
  // writes it must cover have been served (an OrderedRequest's start).
  Task<Status> Sync();

 private:
  Shard(ShardOptions options, io::Directory dir);
  Task<Result<std::string>> ReadValue(const IndexEntry& entry, std::string_view key);
  struct ScanReads;
  // The scan's keys now: the index overlaid with the unflushed writes
  // (`with_pending`; without, the index alone).
  std::vector<ScanHit> ScanSnapshot(std::string_view from, std::string_view to, uint64_t max_keys,
                                    bool with_pending) const;
  Task<Result<std::vector<ScanHit>>> FinishScanKeys(std::vector<ScanHit> hits, uint64_t ticket,
                                                    std::string from, std::string to,
                                                    uint64_t max_keys);
  Task<Result<std::vector<LogRecord>>> ReadTail(uint64_t from_sequence, uint64_t max_records,
                                                uint64_t last_sequence, uint64_t ticket);
  static Task<void> ScanReader(Shard* shard, ScanReads* reads);
  // Queues a request behind the stalled ones, and starts the drainer.
  void Stall(StalledLink* link);
  // Serves the stalled queue in order, one request at a time, until it is
  // empty: a write once it is in the log writer, a get once it has looked
  // up its key.
  static Task<void> DrainStalled(Shard* shard);
  // Completes a write the log writer took (or refused) as `ticket`, or
  // hands it on to wait until it is durable.
  void Appended(WriteRequest* request, Result<uint64_t> ticket);
  // Answers a get from memory, or starts its read.
  void StartGet(GetRequest* request);
  bool HasStalled() const noexcept { return stalled_out_ != stalled_in_; }
  // Waits until every request stalled before the call has been served.
  Task<void> WaitForStalled();
  // Completes a get that took the coroutine path.
  void GetDone(GetRequest* request);
  // Reads the value `entry` (the index's answer when the request arrived) names.
  static Task<void> ReadFound(Shard* shard, GetRequest* request, IndexEntry entry);
  static void OnDurable(DurableWaiter* waiter, Status status);
  void NoteWriteStatus();

  const ShardOptions options_;
  io::Directory dir_;
  std::unique_ptr<Index> index_;
  CallerReads caller_reads_;  // Before writer_, which borrows it.
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<HintWriter> hints_;
  uint32_t foreground_queue_ = 0;
  // Requests that wait for batch room or a new segment, and every request
  // that came after them while any wait: a thread's writes and gets keep
  // their order (a small write must not overtake a stalled large one to the
  // same key). FIFO; one drainer serves it.
  StalledLink* stalled_head_ = nullptr;
  StalledLink* stalled_tail_ = nullptr;
  bool draining_ = false;
  // Requests ever queued, and ever served (in order): a waiter for the ones
  // queued before it waits for `stalled_out_` to reach its count, so new
  // stalls cannot starve it.
  uint64_t stalled_in_ = 0;
  uint64_t stalled_out_ = 0;
  WaitList unstalled_;
  // Gets whose disk read has started (ReadFound) and not completed: Stop
  // waits for them, since they use the segments and the read buffers. A get
  // still in the stalled queue is counted once the drainer starts it.
  uint32_t gets_in_flight_ = 0;
  WaitList gets_done_;
  std::atomic<bool> read_only_{false};
  uint64_t recovered_records_ = 0;
  uint64_t recovery_dropped_bytes_ = 0;
  std::string recovery_note_;
  uint64_t segments_loaded_from_hints_ = 0;
  uint64_t recovery_read_bytes_ = 0;
  bool used_clean_marker_ = false;
};

}  // namespace dmalog::engine

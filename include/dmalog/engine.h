// dmalog::Engine: the embedding API.
//
//   auto db = dmalog::Engine::Open(options);      // Result<unique_ptr<Engine>>
//   if (!db.ok()) { ... db.status().ToString() ... }
//   Status s = (*db)->Put({}, "key", "value");    // durable on return
//   Result<std::string> v = (*db)->Get("key");
//   s = (*db)->Close();
//
// A database is split into shards, one per executor thread (one per core).
// A key's shard is chosen by hashing the key, or its "{hash tag}" (see
// write_batch.h). Each shard has its own log, index and group commit.
//
// Three forms of every operation but Open and Close:
//   * Blocking (Put, Get, ...): safe from any thread that is not an executor
//     (of this engine or another). They return when the operation is
//     complete. On an executor they could wait for themselves, or for an
//     engine whose callbacks block on this one, so they return
//     InvalidArgument (Stats, which has no error to return, aborts with a
//     message, as the destructor does).
//   * Asynchronous (PutAsync, ScanAsync, ...): return at once, from any
//     thread (callbacks included: they never wait for room in a full
//     inbox); `done` runs later on an executor thread (the key's shard's,
//     or for a call that spans shards, the one that finished last) and
//     must not block. Exception: a call refused before it reaches a shard
//     (the engine is closed, an empty or cross-shard batch, a tail of a
//     shard that does not exist) runs `done` at once, on the calling
//     thread, before the call returns; so do not hold a lock that `done`
//     takes while you make the call. Keys, values and batches
//     are copied (into pooled buffers) before the call returns.
//   * Coroutine (CoPut, ...): for code that runs on the engine's executors
//     (see Spawn), as Glommio applications do. Await them directly
//     (`co_await db.CoPut(...)`) so that the argument views outlive the call.
//     Pass options as named objects, not `{}`: GCC 12 destroys a braced
//     temporary argument of a co_await expression twice (seen with a
//     ScanOptions in tests/engine/thread_rules_test.cc).
//     Anywhere else (another engine's executors included) they return
//     InvalidArgument.
//
// Order: a thread's calls to a shard take effect in the order it made
// them, whatever their form: blocking and asynchronous calls from any
// thread, and on an executor, a task's asynchronous calls and its awaited
// coroutine calls too (a CoGet after a PutAsync sees its write). Each
// thread reaches a shard through one FIFO (the shard's inbox; on the
// shard's own executor, that executor's queue of messages to itself), and a
// coroutine form calls its own shard directly only when that queue is empty.
// A scan or tail takes effect at its place in that order: it sees the
// thread's earlier writes and none of its later ones.
//
// No exception crosses this API. Every error is a Status naming its cause.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dmalog/options.h"
#include "dmalog/status.h"
#include "dmalog/task.h"
#include "dmalog/write_batch.h"

namespace dmalog {

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

struct ScanOptions {
  std::string from;          // First key (inclusive); empty: from the start.
  std::string to;            // Last key (exclusive); empty: to the end.
  uint64_t max_keys = 1000;  // At most this many results.
};

// One record of a shard's log, for replication and change-data-capture.
struct LogRecord {
  enum class Type : uint8_t { kPut, kDelete };
  uint32_t shard = 0;
  uint64_t sequence = 0;
  Type type = Type::kPut;
  std::string key;
  std::string value;
};

struct TailOptions {
  uint32_t shard = 0;
  uint64_t from_sequence = 1;  // First sequence returned (inclusive).
  uint64_t max_records = 1000;
};

struct ShardStats {
  uint32_t shard = 0;
  uint64_t keys = 0;
  uint64_t last_sequence = 0;
  uint64_t segments = 0;
  uint64_t log_bytes = 0;        // Bytes of the log written, padding included.
  uint64_t flushes = 0;          // Group commits.
  uint64_t records_flushed = 0;  // Records in those group commits.
  uint64_t index_memory_bytes = 0;
  double index_overhead_bytes_per_key = 0;  // Beyond the key bytes.
  uint64_t recovered_records = 0;
  uint64_t recovery_dropped_bytes = 0;
  std::string recovery_note;  // Why bytes were dropped, if any.
  // Bytes the open read to recover: the scanned part of each scanned
  // segment plus the hint files (and the blocks checking them) it used.
  uint64_t recovery_read_bytes = 0;
  uint64_t segments_loaded_from_hints = 0;  // At open (Options::use_hint_files).
  // The open read the log only up to where the last clean close ended it
  // (docs/format.md, "The clean-close marker"); false after a crash.
  bool opened_after_clean_close = false;
  // Blocking gets served on their calling thread since open (one pread
  // each, Options::read_on_calling_thread); the rest went through the
  // shard's executor.
  uint64_t gets_on_calling_thread = 0;
  // The longest the executor waited, to change the index, for gets
  // searching it on their calling threads (normally microseconds; more
  // when such a thread lost its CPU mid-search).
  uint64_t index_change_wait_us_max = 0;
  uint64_t hints_written = 0;        // Hint files written since open.
  uint64_t hint_write_failures = 0;  // Hints not written since open (counted only).
  std::string read_only_cause;       // Set once a write error stopped writes.
  bool direct_io = true;             // false: buffered I/O + fdatasync fallback.
  uint32_t write_alignment_bytes = 0;
};

struct EngineStats {
  std::string db_path;
  std::string io_backend;   // e.g. "io_uring depth=256 flags=..."
  std::string io_fallback;  // Why a fallback runs; empty if none.
  bool direct_io = true;    // false: buffered I/O + fdatasync fallback.
  uint32_t write_alignment_bytes = 0;
  uint64_t segment_size_bytes = 0;
  std::vector<ShardStats> shards;
  std::string ToString() const;  // Several lines, for `dmalog stats`.
};

class Engine {
 public:
  // Opens or creates the database in options.db_path, recovering every
  // shard in parallel. Errors name the cause: "database DIR is locked by pid
  // N", a corrupt segment with its offset, a missing O_DIRECT with
  // require_direct_io, and so on. A blocking call: InvalidArgument on an
  // executor thread.
  static Result<std::unique_ptr<Engine>> Open(const Options& options);

  virtual ~Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- Blocking forms (any thread but an executor's).
  virtual Status Put(const WriteOptions& options, std::string_view key, std::string_view value) = 0;
  virtual Status Delete(const WriteOptions& options, std::string_view key) = 0;
  // Atomic; all keys must share a shard (see write_batch.h).
  virtual Status Write(const WriteOptions& options, const WriteBatch& batch) = 0;
  // NotFound when the key is absent or deleted.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // Keys in order across all shards: each shard finds up to max_keys of
  // its keys in [from, to), a k-way merge keeps the first max_keys, and
  // only their values are read.
  virtual Result<std::vector<KeyValue>> Scan(const ScanOptions& options) = 0;
  // A shard's records in log order.
  virtual Result<std::vector<LogRecord>> Tail(const TailOptions& options) = 0;
  virtual EngineStats Stats() = 0;
  // Makes every write acknowledged before the call durable, sync=false ones
  // included: each shard's queued records go out in a group commit, and
  // Sync waits for it (RocksDB's SyncWAL). Returns the first write error any
  // shard met, including one a sync=false write got after it returned: that
  // one stays, and every later Sync() (on any thread) and Close() returns it.
  virtual Status Sync() = 0;
  // Flushes queued writes, stops the executors and releases the lock. Safe
  // while other threads are still calling: Close first waits for the calls
  // already in progress (a blocking call until it returns, an asynchronous
  // one until its request is queued; queued writes are then flushed and
  // their callbacks run), and every call that starts later returns Aborted.
  // Call it from a thread of your own, never from a callback or coroutine
  // (InvalidArgument). The destructor closes too, discarding the status.
  // OK means every write acknowledged before it is durable; otherwise it
  // returns the error that stopped a shard's writes (a failed flush may
  // have lost sync=false writes) or that a sync=false write got.
  virtual Status Close() = 0;

  // ---- Asynchronous forms (any thread; `done` runs on an executor thread,
  // so it must not call the blocking forms or Close, or inline when the
  // call is refused at once: see the top of this file). Keys, values and
  // batches are copied before the call returns: the caller may free them
  // at once.
  using StatusCallback = std::function<void(Status)>;
  using GetCallback = std::function<void(Result<std::string>)>;
  virtual void PutAsync(const WriteOptions& options, std::string_view key, std::string_view value,
                        StatusCallback done) = 0;
  virtual void DeleteAsync(const WriteOptions& options, std::string_view key,
                           StatusCallback done) = 0;
  virtual void WriteAsync(const WriteOptions& options, const WriteBatch& batch,
                          StatusCallback done) = 0;
  virtual void GetAsync(std::string_view key, GetCallback done) = 0;
  // The calls that span shards run on every shard at once; `done` runs on
  // the executor of the shard that finished last. Close waits for them.
  using ScanCallback = std::function<void(Result<std::vector<KeyValue>>)>;
  using TailCallback = std::function<void(Result<std::vector<LogRecord>>)>;
  using StatsCallback = std::function<void(EngineStats)>;
  virtual void ScanAsync(const ScanOptions& options, ScanCallback done) = 0;
  virtual void TailAsync(const TailOptions& options, TailCallback done) = 0;
  virtual void SyncAsync(StatusCallback done) = 0;
  virtual void StatsAsync(StatsCallback done) = 0;
  // Close has no asynchronous form: it stops the executors a callback would
  // run on. Call it from a thread of your own.

  // ---- Coroutine forms (only on this engine's executor threads).
  virtual Task<Status> CoPut(const WriteOptions& options, std::string_view key,
                             std::string_view value) = 0;
  virtual Task<Status> CoDelete(const WriteOptions& options, std::string_view key) = 0;
  virtual Task<Status> CoWrite(const WriteOptions& options, const WriteBatch& batch) = 0;
  virtual Task<Result<std::string>> CoGet(std::string_view key) = 0;
  // These resume the awaiting task on its own executor once every shard
  // they span has answered.
  virtual Task<Result<std::vector<KeyValue>>> CoScan(const ScanOptions& options) = 0;
  virtual Task<Result<std::vector<LogRecord>>> CoTail(const TailOptions& options) = 0;
  virtual Task<Status> CoSync() = 0;
  virtual Task<Result<EngineStats>> CoStats() = 0;
  // Runs `task` on shard `shard`'s executor, in its foreground queue.
  virtual Status Spawn(uint32_t shard, Task<void> task) = 0;

  virtual uint32_t shard_count() const noexcept = 0;
  virtual uint32_t ShardOf(std::string_view key) const noexcept = 0;

 protected:
  Engine() = default;
};

}  // namespace dmalog

// Options for opening a dmalog database and for individual writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmalog {

// What Open does when recovery finds damaged records. The names and meaning
// follow RocksDB's WALRecoveryMode.
enum class RecoveryMode : uint8_t {
  // Default. A damaged record at the end of a shard's log (a write torn by a
  // crash, never acknowledged) is dropped; damage followed by valid records
  // is an error naming the segment and offset.
  kTolerateCorruptedTailRecords,
  // Any damaged record, even at the tail, is an error.
  kAbsoluteConsistency,
  // Recover each shard up to its first damaged record and drop the rest,
  // reporting how many bytes were dropped. Never fails for damage.
  kPointInTime,
  // Skip every damaged record and keep going; report what was skipped.
  kSkipAnyCorruptedRecords,
};
const char* RecoveryModeName(RecoveryMode mode) noexcept;
// Parses "tolerate_corrupted_tail_records", "absolute_consistency",
// "point_in_time" or "skip_any_corrupted_records"; false if unknown.
bool ParseRecoveryMode(const std::string& name, RecoveryMode* mode);

struct Options {
  // The database directory. Created when missing (if create_if_missing).
  // Without create_if_missing, Open also refuses an existing directory that
  // holds no database (no MANIFEST), and creates nothing there.
  std::string db_path = "./dmalog-data";
  bool create_if_missing = true;
  bool error_if_exists = false;

  // Shards (one executor thread each) for a NEW database; 0 means one per
  // online CPU. An existing database keeps the count in its MANIFEST.
  uint32_t shard_count = 0;
  // Pin shard i to cpus[i % cpus.size()]; empty leaves threads unpinned.
  std::vector<int> cpus;

  // Fixed size of every segment file (new databases only; 4 MiB..4 GiB).
  uint64_t segment_size_bytes = 64ull << 20;
  // Segments created (zero-filled) ahead of the one being written, per
  // shard, 1..8: more absorb a burst that fills segments faster than one
  // can be created, at segment_size_bytes of disk each.
  uint32_t segments_preallocated = 1;
  static constexpr uint32_t kSegmentsPreallocatedMax = 8;
  // Largest group commit, in bytes (the shard's write buffer).
  uint32_t flush_bytes_max = 1u << 20;
  // Before a flush, wait up to this long (and never longer than the last
  // flush took) until as many records are queued as the last flush
  // carried, so that the writers it acknowledged rejoin the next group
  // commit instead of waiting for the one after (engine/flush_pacer.h).
  // 0 flushes at once; at most 10000. A lone writer never waits.
  uint32_t group_commit_linger_us = 100;

  RecoveryMode recovery_mode = RecoveryMode::kTolerateCorruptedTailRecords;

  // Build each sealed segment's index entries at open from its hint file
  // ("NNNNNNNN.hint", written in the background after the writer rolls past
  // the segment; docs/format.md "Hint files") instead of reading the whole
  // segment. Opening then reads a few percent of the log. The trade-off:
  // the records of a hint-loaded segment are not verified at open, so damage
  // inside a sealed segment is found when a read verifies that record's
  // checksum (every read does), not by recovery, and the recovery mode does
  // not apply to it. false (the default) scans and verifies every record.
  // An invalid or stale hint is ignored (and removed): the segment is
  // scanned; a hint never makes the open fail. Hints are written either way.
  bool use_hint_files = false;

  // Fail instead of falling back to buffered I/O (filesystem without
  // O_DIRECT) or to the thread-pool backend (io_uring unavailable).
  bool require_direct_io = false;
  // Use the thread-pool backend even where io_uring works (testing).
  bool force_io_fallback = false;
  // Latency against CPU. A blocking call that is the only one in flight
  // spins for up to `caller_spin_us` before it sleeps, and an executor with
  // nothing to run and no I/O in flight polls its inboxes for
  // `idle_poll_us` after its last work before it sleeps (Seastar's
  // --idle-poll-time-us). Either saves a thread wake-up per request (tens
  // of microseconds on a VM, a few on bare metal) and burns its CPU while
  // it waits, yielding it every few microseconds to any thread that is
  // ready on it; 0 sleeps at once. Measured on 2 vCPUs whose kernel packs
  // threads onto one vCPU (2026-12-06, `bench/ab.sh`, idle_poll_us 0
  // against 300, B/A of ops/s): one thread's readrandom 1.59, fillseq
  // --sync=0 1.44, a lone durable put's P50 126-138 us to 93-117 us;
  // 16 durable writers 0.95 and 1.06, 16 readers 0.99, 2x256 writes in
  // flight 1.01. The spins used to be pure `pause` loops; on a packed vCPU
  // they held off the very thread they waited for (a lone durable put's
  // P50 354-387 us; docs/benchmarks.md, session 12).
  uint32_t caller_spin_us = 200;
  uint32_t idle_poll_us = 300;

  // A blocking Get searches the shard's index and reads its value with one
  // pread on the calling thread, instead of posting the get to the shard's
  // executor and sleeping until it answers (which costs a second thread
  // wake-up per get), whenever no write to that shard is still on its way
  // into the index; otherwise, and always for the asynchronous and
  // coroutine forms, the executor serves it. Either way a get sees every
  // write acknowledged before it, and the calling thread's own writes.
  // Measured: docs/benchmarks.md, "What session 14 measured".
  bool read_on_calling_thread = true;

  // Print no warning line on stderr when a fallback is taken, or when an
  // open's recovery dropped bytes; the reasons stay readable in Stats()
  // (io_fallback, direct_io, recovery_dropped_bytes, recovery_note).
  bool quiet = false;
};

struct WriteOptions {
  // true (the default): the call returns once the write is durable (written
  // and fdatasync'ed). false: it returns once the write is queued for the
  // next group commit; a crash can lose it (and every other write queued
  // but not yet flushed), but never a write acknowledged with sync = true,
  // and never part of a batch. Engine::Sync() makes them durable. Should
  // the shard fail such a write after the call returned (a disk full when
  // it needs a new segment), the shard refuses every later write, so that
  // no write lands after the lost one, and every later Sync() and Close()
  // returns the error.
  bool sync = true;
};

}  // namespace dmalog

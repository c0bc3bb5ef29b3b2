// CallerReads: lets a blocking Get read its value on the calling thread.
//
// The reactor path of a blocking get costs two thread hand-offs: the caller
// posts the get to the shard's executor and sleeps; the executor searches
// the index, reads through its ring, and wakes the caller. With 16 callers
// on a 2-vCPU VM, that second wake-up (an IPI to a halted vCPU) and the
// executor's own wake-up on the completion cost ~80 us a get beyond the
// device's own latency, and the device then sees fewer reads in flight
// than there are callers (docs/benchmarks.md, "What session 14 measured"). A caller that
// searches the index and reads with one pread is woken once, by the
// device's completion, as a thread of RocksDB or fio's psync engine is.
//
// Only when nothing the index does not show yet is on its way: a write
// posted to the shard (from any thread), stalled, or still in the log
// writer's batches counts until its records are in the index or the write
// failed (`unindexed_`). Otherwise the get takes the executor's path,
// which also sees unflushed writes. So a thread's gets see its own writes
// (sync = false ones included), and no get on this path returns an older
// value than a get on the executor's path could have returned before it.
//
// The index stays the executor's: it alone changes it, between
// BeginIndexChange and EndIndexChange. Callers search it under a latch
// they never wait for: when the executor holds it, the get takes the
// executor's path. The executor waits only for searches already under way
// (a B-tree search each, ~1 us).
//
// These reads bypass the executor's I/O dispatcher: they are outside its
// limit on I/O in flight and its shares between queues (a caller's read
// does not yield to, or wait behind, the segment preparer's writes), as a
// RocksDB reader's pread is.
//
// Segments are found through a table of the newest kSegmentSlots segments
// (slot id % kSegmentSlots). A segment is never freed while its shard is
// open (LogWriter keeps every one), so a stale slot is still a valid
// Segment, whose id then does not match: the get takes the executor's path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dmalog/status.h"
#include "engine/index.h"
#include "engine/segment.h"

namespace dmalog::engine {

class CallerReads {
 public:
  // Segments the table finds (the newest ones; older ones take the
  // executor's path).
  static constexpr uint32_t kSegmentSlots = 4096;
  // Longest aligned read a caller makes; longer records take the executor's
  // path (a pool buffer, or one of their own). Each calling thread keeps
  // one buffer of at most this size for the life of the thread.
  static constexpr uint32_t kReadBytesMax = 128 * 1024;

  // `enabled` false: TryGet always declines (Options::read_on_calling_thread).
  explicit CallerReads(bool enabled) : enabled_(enabled) {}
  CallerReads(const CallerReads&) = delete;
  CallerReads& operator=(const CallerReads&) = delete;

  // Any thread: a write is on its way to the shard. Called before the
  // request is posted (or, on the executor, submitted).
  void WriteComing() noexcept { unindexed_.fetch_add(1, std::memory_order_relaxed); }
  // Any thread: `count` writes counted by WriteComing are in the index, or
  // will never be (refused, failed, or the engine closed).
  void WritesSettled(uint64_t count) noexcept;

  // Executor thread: brackets every change to the index (waits for the
  // callers' searches already under way).
  void BeginIndexChange() noexcept;
  void EndIndexChange() noexcept;
  // Executor thread: `segment` (which stays valid while the shard is open)
  // can be read from now on.
  void Publish(const Segment* segment) noexcept;

  // Any thread but the shard's executor: the value of `key`, NotFound, or
  // the read's error (naming segment and offset); nullopt when the get
  // must take the executor's path instead. `index` is the shard's,
  // borrowed for the call.
  [[nodiscard]] std::optional<Result<std::string>> TryGet(const Index& index, std::string_view key);

  // Gets this path answered since open.
  uint64_t gets() const noexcept { return gets_.load(std::memory_order_relaxed); }
  // The longest BeginIndexChange waited for searches under way (a caller
  // descheduled inside its search holds the executor up: priority
  // inversion, bounded by how long the kernel keeps that thread off a CPU).
  uint64_t index_change_wait_ns_max() const noexcept {
    return index_change_wait_ns_max_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr uint32_t kWriterBit = 1u << 31;
  bool TryEnterSearch() noexcept;
  void LeaveSearch() noexcept;
  const Segment* FindSegment(uint32_t id) const noexcept;
  std::optional<Result<std::string>> Read(const Segment& segment, const IndexEntry& entry,
                                          std::string_view key);

  // Each word every thread writes has a cache line of its own.
  static constexpr size_t kCacheLineBytes = 64;
  const bool enabled_;
  alignas(kCacheLineBytes) std::atomic<uint64_t> unindexed_{0};
  // kWriterBit while the executor changes the index; the low bits count
  // callers searching it.
  alignas(kCacheLineBytes) std::atomic<uint32_t> latch_{0};
  alignas(kCacheLineBytes) std::atomic<uint64_t> gets_{0};
  // Written by the executor only (atomic: Stats may read it elsewhere).
  std::atomic<uint64_t> index_change_wait_ns_max_{0};
  alignas(kCacheLineBytes) std::atomic<const Segment*> segments_[kSegmentSlots] = {};
};

}  // namespace dmalog::engine

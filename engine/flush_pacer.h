// FlushPacer: how long a shard's flusher lingers before a flush, waiting for
// the writers of the previous flush to come back.
//
// Group commit takes every record that arrived while the previous flush was
// in flight. With N blocking writers that is about N/2: the writers a flush
// acknowledges are woken (a thread hand-off, tens of microseconds on a VM)
// and post their next write while the next flush, holding the other half,
// is already in flight. The two halves then alternate for good, each flush
// carrying half the writers. Lingering until as many records are queued as
// the last flush carried joins the halves: 16 blocking writers on 2 shards
// went from 3.9 to 6.7 records per flush and from 29 K to 39 K writes/s
// (docs/benchmarks.md, "What session 14 measured").
//
// The linger is bounded by Options::group_commit_linger_us and by the last
// flush's own latency: waiting costs a writer at most what missing the
// next flush would. A lone writer never waits (its flush carried one
// record, and its next write is that one), and a workload whose writers
// went away pays the bound once, after which the last flush is small.
//
// Executor thread only (the LogWriter's).
#pragma once

#include <cstdint>

namespace dmalog::engine {

class FlushPacer {
 public:
  // How often a lingering flusher checks the queue.
  static constexpr uint64_t kLingerStepNs = 20'000;
  // Options::group_commit_linger_us may not exceed this.
  static constexpr uint32_t kLingerUsMax = 10'000;

  explicit FlushPacer(uint32_t linger_us_max) noexcept
      : linger_ns_max_(uint64_t{linger_us_max} * 1000) {}

  // A flush of `records` records completed (or failed) `latency_ns` after
  // it was handed to the kernel.
  void Flushed(uint64_t records, uint64_t latency_ns) noexcept {
    last_records_ = records;
    last_latency_ns_ = latency_ns;
  }
  // When the flusher finds `queued` records at `now_ns`: the time until
  // which it may linger, or 0 to flush at once.
  uint64_t LingerUntilNs(uint64_t queued, uint64_t now_ns) const noexcept {
    if (!Wants(queued) || linger_ns_max_ == 0) return 0;
    return now_ns + (last_latency_ns_ < linger_ns_max_ ? last_latency_ns_ : linger_ns_max_);
  }
  // Whether `queued` records are fewer than the last flush carried.
  bool Wants(uint64_t queued) const noexcept { return queued < last_records_; }

 private:
  const uint64_t linger_ns_max_;
  uint64_t last_records_ = 0;
  uint64_t last_latency_ns_ = 0;
};

}  // namespace dmalog::engine

// LatencyHistogram: log2 buckets of microseconds, for I/O latency stats.
//
// Bucket 0 counts latencies below 1 us; bucket i (i >= 1) counts latencies in
// [2^(i-1), 2^i) us; the last bucket also takes everything larger. Recording
// is O(1) and allocation-free; a histogram is a plain value that can be
// copied into a stats snapshot.
#pragma once

#include <array>
#include <cstdint>

namespace dmalog::sched {

class LatencyHistogram {
 public:
  // 2^(kBucketCount-2) us is about 36 minutes: nothing real is slower.
  static constexpr uint32_t kBucketCount = 32;

  void Record(uint64_t latency_ns) noexcept;
  void Merge(const LatencyHistogram& other) noexcept;

  uint64_t count() const noexcept { return count_; }
  uint64_t bucket(uint32_t index) const noexcept { return buckets_[index]; }
  // Exclusive upper bound of bucket `index`, in microseconds.
  static uint64_t BucketLimitUs(uint32_t index) noexcept;

  // The upper bound (us) of the bucket holding the `percentile`-th sample,
  // `percentile` in [0, 100]. 0 when the histogram is empty.
  uint64_t PercentileUs(double percentile) const noexcept;

 private:
  std::array<uint64_t, kBucketCount> buckets_{};
  uint64_t count_ = 0;
};

}  // namespace dmalog::sched

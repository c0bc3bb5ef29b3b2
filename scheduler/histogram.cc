#include "scheduler/histogram.h"

#include <bit>
#include <cassert>
#include <cmath>

namespace dmalog::sched {

void LatencyHistogram::Record(uint64_t latency_ns) noexcept {
  const uint64_t latency_us = latency_ns / 1000;
  // bit_width(0) = 0, bit_width(1) = 1, bit_width(2..3) = 2, ...
  uint32_t index = static_cast<uint32_t>(std::bit_width(latency_us));
  if (index >= kBucketCount) index = kBucketCount - 1;
  ++buckets_[index];
  ++count_;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) noexcept {
  for (uint32_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
}

uint64_t LatencyHistogram::BucketLimitUs(uint32_t index) noexcept {
  assert(index < kBucketCount);
  return uint64_t{1} << index;
}

uint64_t LatencyHistogram::PercentileUs(double percentile) const noexcept {
  assert(percentile >= 0.0 && percentile <= 100.0);
  if (count_ == 0) return 0;
  uint64_t rank =
      static_cast<uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return BucketLimitUs(i);
  }
  assert(false && "rank beyond count");
  return BucketLimitUs(kBucketCount - 1);
}

}  // namespace dmalog::sched

// Helpers shared by the scheduler tests.
#pragma once

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "scheduler/executor_group.h"
#include "tests/test_util.h"

namespace dmalog::sched::testing {

// The CPUs this process may run on, in order.
inline std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// Small executors: tests start many of them.
inline GroupOptions SmallGroup(uint32_t shards, std::vector<int> cpus = {}) {
  GroupOptions options;
  options.shards = shards;
  options.cpus = std::move(cpus);
  options.executor.backend.ring_depth = 32;
  options.executor.buffer_count = 4;
  options.executor.buffer_size_bytes = 64u << 10;
  return options;
}

inline std::unique_ptr<ExecutorGroup> StartOrDie(const GroupOptions& options) {
  Result<std::unique_ptr<ExecutorGroup>> group = ExecutorGroup::Start(options);
  EXPECT_TRUE(group.ok()) << group.status().ToString();
  if (!group.ok()) return nullptr;
  return std::move(group).value();
}

// The value at `percentile` (0..100] of `samples` (nearest rank).
inline uint64_t PercentileOf(std::vector<uint64_t> samples, double percentile) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  size_t rank =
      static_cast<size_t>(percentile / 100.0 * static_cast<double>(samples.size()) + 0.999);
  rank = std::clamp<size_t>(rank, 1, samples.size());
  return samples[rank - 1];
}

}  // namespace dmalog::sched::testing

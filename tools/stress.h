// `dmalog stress`: a db_stress-style workload whose every acknowledged write
// can be checked after a crash, and `dmalog stress --verify`, which checks.
//
//   dmalog --db=DIR stress --threads=4 --keys=10000 --duration_s=10
//   kill -9 ...                                   # at any instant
//   dmalog --db=DIR stress --verify               # exit 0: nothing lost
//
// Threads do random puts, overwrites, deletes and batches on a bounded key
// space (tools/expected_state.h describes keys, values and the expected-state
// file). Each thread owns every `threads`-th key group, so each key has one
// writer; a batch writes keys of one group (one hash tag, so one shard).
//
// Verification reopens the database and reads every key: a committed write
// must be there or superseded by the pending one; a pending write may be
// there or not; a delete must not be undone; every value must be exactly
// the bytes its write wrote; a batch's pending keys must be all applied or
// none. It prints what it checked, the counts of each kind of mismatch and
// the first mismatch in full. When everything matches it records the state
// found as committed, so a new stress run can continue from there. A stress
// run first verifies the same way if the last run left writes pending.
//
// This header depends only on the public API: tools/cli_command.h embeds
// StressOptions in its Command.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>

#include "dmalog/options.h"

namespace dmalog::cli {

inline constexpr uint32_t kStressThreadsMax = 256;
inline constexpr uint64_t kStressOpsDefault = 20000;
inline constexpr uint64_t kStressDurationSecondsMax = 7 * 24 * 3600;
// Flag limits (checked against tools/expected_state.h in stress.cc).
inline constexpr uint64_t kStressKeysMin = 8;
inline constexpr uint64_t kStressKeysMax = 1ull << 22;
inline constexpr uint32_t kStressValueSizeMin = 48;
inline constexpr uint32_t kStressValueSizeMax = 1u << 20;

struct StressOptions {
  bool verify = false;
  // Empty: "<db_path>.expected_state", beside the database directory.
  std::string expected_state_path;
  uint32_t threads = 4;
  // Operations in all (a batch counts one); 0: no limit (use duration_s).
  uint64_t ops = kStressOpsDefault;
  uint64_t keys = 10000;         // Rounded up to a multiple of the group size.
  uint64_t duration_s = 0;       // 0: no limit (use ops).
  uint64_t seed = 1;             // Mixed with the run number.
  uint32_t batch_percent = 10;   // Of operations.
  uint32_t delete_percent = 15;  // Of single-key operations and batch entries.
  uint32_t value_size_max = 256;
};

// The expected-state path `options` selects for database `db_path`.
std::string ExpectedStatePath(const StressOptions& options, const std::string& db_path);

// Runs the stress workload (or, with options.verify, the verification)
// against the database `db` describes, writing with `write_options`.
// Returns kExitOk, kExitUsage for bad flags, or kExitError for a failed open,
// a failed write or a mismatch (explained on `err`). The streams are
// borrowed for the call.
int RunStress(const StressOptions& options, const Options& db, const WriteOptions& write_options,
              std::ostream& out, std::ostream& err);

}  // namespace dmalog::cli

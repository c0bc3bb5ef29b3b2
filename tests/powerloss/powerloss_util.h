// The simulated power-loss suite's driver: one seed = one database, writer
// threads with sync = true tracked in an in-memory ExpectedState
// (tools/expected_state.h), a SimulateCrash on every shard's io::FaultBackend
// at a random point, a reopen with a plain engine, and a check of every key.
//
// Everything random comes from the seed: shard count, the op streams, the
// crash point, the CrashOptions (tear, fill, kept size) and the variant
// (bit flips in synced data, misdirected writes). Thread timing is not
// seeded, so a seed replays the same scenario, not the same interleaving.
#pragma once

#include <cstdint>
#include <string>

namespace dmalog::testing {

struct PowerLossConfig {
  // Test-only "build with fdatasync skipped": every fdatasync of the engine
  // succeeds without running, so its writes stay unsynced in the undo log.
  bool skip_fdatasync = false;
  // Bit flips / misdirected writes by seed (see RunPowerLossSeed).
  bool allow_damage_variants = true;
};

struct PowerLossResult {
  std::string scenario;  // One line: shards, crash point, CrashOptions.
  uint64_t acknowledged = 0;
  uint64_t keys_checked = 0;
  uint64_t lost = 0;  // Acknowledged writes missing (older state found).
  uint64_t resurrected = 0;
  uint64_t corrupt = 0;       // Corrupt or never-written values.
  bool open_refused = false;  // Reopen failed with Corruption naming segment and offset.
  std::string failure;        // Empty when the seed passed.
  std::string first_mismatch;
};

// Runs seed `seed` in a fresh directory under `dir` (removed afterwards
// unless DMALOG_KEEP_TEST_DATA is set).
PowerLossResult RunPowerLossSeed(uint64_t seed, const PowerLossConfig& config,
                                 const std::string& dir);

}  // namespace dmalog::testing

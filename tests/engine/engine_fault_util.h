// Helpers shared by the engine's fault-injection and recovery tests: small
// database options, a FaultHarness that runs every shard over an
// io::FaultBackend, and a reader of segment files that lists their records
// (for tests that damage files at known offsets).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "engine/engine_hooks.h"
#include "engine/record.h"
#include "io/fault_backend.h"

namespace dmalog::testing {

inline constexpr uint64_t kSmallSegmentBytes = 4u << 20;

// Options for a database in `path` with `shards` shards and the smallest segments.
Options SmallDbOptions(const std::string& path, uint32_t shards);

// Opens with Engine::Open; records a test failure and returns null on error.
std::unique_ptr<Engine> OpenOrFail(const Options& options);

// Runs `fn` on shard `shard`'s executor thread and waits for it. `db` is
// borrowed for the call; `fn` must not block on the engine.
Status RunOnShard(Engine& db, uint32_t shard, std::function<void()> fn);

// Wraps each shard's io backend in an io::FaultBackend seeded from `seed`
// and the shard number. The harness must outlive the engine opened with
// Hooks(); the backends are owned by the engine's shards.
class FaultHarness {
 public:
  explicit FaultHarness(uint64_t seed) : seed_(seed) {}

  engine::EngineHooks Hooks();
  // The FaultBackend of shard `shard` (owned by the engine's executor and
  // destroyed by Close); null when the engine has not opened that shard.
  // Use it only on the shard's thread (RunOnShard, or the helpers below),
  // and only while the engine is open.
  io::FaultBackend* backend(uint32_t shard);

  // Arms `spec` on the nth matching operation of shard `shard`.
  Status InjectAt(Engine& db, uint32_t shard, uint64_t nth_op, io::FaultSpec spec);
  // Simulates power loss on shard `shard`'s files, on its thread.
  Result<io::CrashReport> Crash(Engine& db, uint32_t shard, const io::CrashOptions& options);

 private:
  const uint64_t seed_;
  std::mutex mu_;
  std::vector<io::FaultBackend*> backends_;  // By shard; not owned.
};

// Waits until every shard has its spare segment, so that the background
// preparation does not consume the faults a test arms for a write.
void WaitForSpareSegments(Engine& db);

// A record found in a segment file.
struct SegmentRecord {
  uint64_t offset_bytes = 0;
  uint32_t encoded_bytes = 0;
  uint64_t sequence = 0;
  uint8_t type = 0;
  std::string key;    // Empty for batches and padding.
  uint8_t flags = 0;  // format::kRecordFlag*.
};

// "DB/shard-00S/0000000I.seg".
std::string SegmentPath(const std::string& db_path, uint32_t shard, uint64_t id);
// Reads segment file `path` and lists its records (padding included) up to
// the first all-zero header or damaged record.
Result<std::vector<SegmentRecord>> ReadSegmentRecords(const std::string& path);
// Records of `path` that carry data (puts, deletes, batches).
Result<std::vector<SegmentRecord>> ReadDataRecords(const std::string& path);
// Flips bit 0 of the byte at `offset_bytes` of `path`.
Status FlipByte(const std::string& path, uint64_t offset_bytes);
// Overwrites [offset_bytes, offset_bytes + length_bytes) of `path` with
// zeros, as a write that never reached the disk leaves preallocated space.
Status ZeroRange(const std::string& path, uint64_t offset_bytes, uint32_t length_bytes);
// Writes `bytes` at `offset_bytes` of the existing file `path`, then fsyncs.
Status WriteAt(const std::string& path, std::span<const uint8_t> bytes, uint64_t offset_bytes);
// The `length_bytes` bytes of `path` at `offset_bytes`.
Result<std::vector<uint8_t>> ReadAt(const std::string& path, uint64_t offset_bytes,
                                    size_t length_bytes);
// The decoded header of segment file `path`, and its replacement.
Result<engine::SegmentHeader> ReadSegmentHeader(const std::string& path);
Status WriteSegmentHeader(const std::string& path, const engine::SegmentHeader& header);

}  // namespace dmalog::testing

// Engine::Stats, which asks every shard, and EngineStats::ToString, the
// report `dmalog stats` prints.
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>

#include "dmalog/engine.h"
#include "engine/engine_impl.h"
#include "engine/fan_out.h"
#include "engine/shard.h"
#include "scheduler/executor.h"
#include "scheduler/executor_group.h"

namespace dmalog {
namespace {

std::string Fixed1(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", x);
  return buf;
}

std::string ShardLine(const ShardStats& s) {
  const double per_flush =
      s.flushes == 0 ? 0.0
                     : static_cast<double>(s.records_flushed) / static_cast<double>(s.flushes);
  std::string out = "shard " + std::to_string(s.shard) + ": keys " + std::to_string(s.keys) +
                    ", last seq " + std::to_string(s.last_sequence) + ", segments " +
                    std::to_string(s.segments) + ", index bytes/key " +
                    Fixed1(s.index_overhead_bytes_per_key) + " (index " +
                    std::to_string(s.index_memory_bytes) + " bytes)\n";
  // The writer's counters start at zero on every open.
  out += "  since open: log bytes " + std::to_string(s.log_bytes) + ", flushes " +
         std::to_string(s.flushes) + ", avg records/flush " + Fixed1(per_flush) +
         ", hint files written " + std::to_string(s.hints_written) + " (failed " +
         std::to_string(s.hint_write_failures) + "), gets read on the calling thread " +
         std::to_string(s.gets_on_calling_thread) + " (index change waited up to " +
         std::to_string(s.index_change_wait_us_max) + " us)\n";
  out += "  recovery: " + std::to_string(s.recovered_records) + " records recovered, " +
         std::to_string(s.recovery_read_bytes) + " bytes read, " +
         std::to_string(s.segments_loaded_from_hints) + " segments from hint files" +
         (s.opened_after_clean_close ? ", after a clean close" : "");
  if (s.recovery_dropped_bytes > 0) {
    out += ", " + std::to_string(s.recovery_dropped_bytes) + " bytes dropped";
  }
  if (!s.recovery_note.empty()) out += " (" + s.recovery_note + ")";
  out += "\n";
  if (!s.read_only_cause.empty()) {
    out += "  READ-ONLY: " + s.read_only_cause +
           "; writes fail until the cause is fixed and the database is reopened\n";
  }
  return out;
}

}  // namespace

std::string EngineStats::ToString() const {
  std::string out = "db: " + db_path + "\n";
  out += "io backend: " + (io_backend.empty() ? std::string("(closed)") : io_backend) + "\n";
  out += "io fallback: " + (io_fallback.empty() ? std::string("none") : io_fallback) + "\n";
  out += "direct I/O: ";
  out += direct_io
             ? "yes (O_DIRECT, write alignment " + std::to_string(write_alignment_bytes) + " bytes)"
             : std::string("no (buffered I/O + fdatasync)");
  out += "\nsegment size: " + std::to_string(segment_size_bytes) + " bytes (" +
         std::to_string(segment_size_bytes >> 20) + " MiB)\n";
  out += "shards: " + std::to_string(shards.size()) + "\n";
  for (const ShardStats& s : shards) out += ShardLine(s);
  return out;
}

namespace engine {

namespace {

// One shard's part of EngineStats, taken on its executor.
struct ShardPart {
  ShardStats stats;
  std::string io_backend;
  std::string io_fallback;
};

Task<Result<ShardPart>> Ready(Result<ShardPart> part) { co_return part; }

// Not a coroutine: the snapshot is taken at the part's place in the shard's
// order (fan_out.h), and the task only hands it over.
Task<Result<ShardPart>> TakeShardPart(const Shard* shard) {
  const sched::ExecutorStats executor = sched::Executor::Current()->Snapshot();
  return Ready(ShardPart{shard->Stats(), executor.backend_description, executor.fallback_reason});
}

}  // namespace

EngineStats EngineImpl::BaseStats() const {
  EngineStats stats;
  stats.db_path = options_.db_path;
  stats.segment_size_bytes = segment_size_bytes_;
  return stats;
}

void EngineImpl::StatsAsync(StatsCallback done) {
  OpGate::Pass pass = gate_.Enter();  // Until `done` returns (fan_out.h).
  if (!pass) return done(BaseStats());
  auto assemble = [stats = BaseStats(), done = std::move(done)](
                      std::vector<Result<ShardPart>> parts, OpGate::Pass /*pass*/) mutable {
    for (Result<ShardPart>& part : parts) {
      if (!part.ok()) continue;  // Aborted: the engine closed first.
      if (stats.io_backend.empty()) {
        stats.io_backend = std::move(part->io_backend);
        stats.io_fallback = std::move(part->io_fallback);
      }
      stats.shards.push_back(std::move(part->stats));
    }
    if (!stats.shards.empty()) {
      stats.direct_io = stats.shards[0].direct_io;
      stats.write_alignment_bytes = stats.shards[0].write_alignment_bytes;
    }
    done(std::move(stats));
  };
  auto make_for = [this](uint32_t i) {
    const Shard* shard = shards_[i].get();
    return [shard] { return TakeShardPart(shard); };
  };
  FanOut<Result<ShardPart>>(*group_, shards_, all_shards_, foreground_queue_, make_for,
                            std::move(assemble), std::move(pass));
}

EngineStats EngineImpl::Stats() {
  if (sched::Executor::Current() != nullptr) {
    // Stats has no error to return, and would wait for itself here.
    std::fprintf(stderr,
                 "dmalog: Engine::Stats was called on an executor thread (in a callback or a "
                 "coroutine of a dmalog engine); call it from a thread of your own, or use "
                 "StatsAsync or CoStats\n");
    std::abort();
  }
  auto promise = std::make_shared<std::promise<EngineStats>>();
  std::future<EngineStats> future = promise->get_future();
  StatsAsync([promise](EngineStats stats) { promise->set_value(std::move(stats)); });
  return future.get();
}

Task<Result<EngineStats>> EngineImpl::CoStats() {
  return CoroutineForm<Result<EngineStats>>(
      "CoStats", [this](StatsCallback done) { StatsAsync(std::move(done)); });
}

}  // namespace engine
}  // namespace dmalog

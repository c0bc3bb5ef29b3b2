// The coroutine forms, awaited by a task on the engine's own executor (as a
// Glommio-style application runs its code). Time per call:
//   co_put_unsynced: CoPut with sync = false (the shard's inbox, a copy of
//                    key and value, the append, the task's resumption);
//   co_get_pending:  CoGet of a key just written, answered from the batch;
//   co_get_disk:     CoGet of a flushed key (one aligned O_DIRECT read);
//   co_put_other_shard: CoPut with sync = false of a key on the other shard
//                    (two shards): the asynchronous form, awaited through
//                    AwaitCallback, and the resumption by a message.
// The first three use one shard, so every call stays on the task's own
// executor.
//   build/coroutine_forms_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "dmalog/engine.h"

namespace dmalog::bench {
namespace {

constexpr int kCallsPerIteration = 2000;
constexpr int kFlushedKeys = 20000;

enum class Kind { kPutUnsynced, kGetPending, kGetDisk, kPutOtherShard };

std::string Key(int i) { return "key" + std::to_string(i); }

// Runs on the executor: kCallsPerIteration calls of `kind`; reports the
// seconds they took, or -1 on an error.
// `other` holds keys on shard 1, for kPutOtherShard.
Task<void> Calls(Engine* db, Kind kind, const std::vector<std::string>* other, uint64_t seed,
                 std::promise<double>* out) {
  const std::string value(100, 'v');
  const WriteOptions unsynced{.sync = false};
  bool ok = true;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCallsPerIteration && ok; ++i) {
    const std::string key = Key(static_cast<int>((seed + i * 7919u) % kFlushedKeys));
    if (kind == Kind::kGetDisk) {
      ok = (co_await db->CoGet(key)).ok();
      continue;
    }
    if (kind == Kind::kPutOtherShard) {
      ok = (co_await db->CoPut(unsynced, (*other)[(seed + i) % other->size()], value)).ok();
      continue;
    }
    const std::string fresh = "new" + key;
    ok = (co_await db->CoPut(unsynced, fresh, value)).ok();
    if (kind == Kind::kGetPending) ok = ok && (co_await db->CoGet(fresh)).ok();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out->set_value(ok ? seconds : -1);
}

std::unique_ptr<Engine> OpenBenchDb(benchmark::State& state, uint32_t shards) {
  Options o;
  o.db_path = BenchDir() + "/coroutine_forms";
  std::filesystem::remove_all(o.db_path);
  o.shard_count = shards;
  o.quiet = true;
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  if (!db.ok()) {
    state.SkipWithError(db.status().ToString().c_str());
    return nullptr;
  }
  const std::string value(100, 'v');
  for (int i = 0; i < kFlushedKeys; ++i) {
    if (Status s = (*db)->Put({.sync = false}, Key(i), value); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return nullptr;
    }
  }
  if (Status s = (*db)->Sync(); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return nullptr;
  }
  return std::move(*db);
}

void BM_CoroutineForm(benchmark::State& state, Kind kind) {
  std::unique_ptr<Engine> db = OpenBenchDb(state, kind == Kind::kPutOtherShard ? 2 : 1);
  if (!db) return;
  std::vector<std::string> other;
  // Bounded: about half of the candidates are on shard 1.
  for (int i = 0; i < kFlushedKeys && other.size() < 1024; ++i) {
    if (db->ShardOf("other" + Key(i)) == 1) other.push_back("other" + Key(i));
  }
  uint64_t seed = 1;
  for (auto _ : state) {
    std::promise<double> done;
    if (Status s = db->Spawn(0, Calls(db.get(), kind, &other, seed++ * 104729u, &done)); !s.ok()) {
      return state.SkipWithError(s.ToString().c_str());
    }
    const double seconds = done.get_future().get();
    if (seconds < 0) return state.SkipWithError("a call failed");
    state.SetIterationTime(seconds);
  }
  const double calls = static_cast<double>(state.iterations()) * kCallsPerIteration *
                       (kind == Kind::kGetPending ? 2 : 1);
  state.counters["sec_per_call"] =
      benchmark::Counter(calls, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (Status s = db->Close(); !s.ok()) state.SkipWithError(s.ToString().c_str());
}

BENCHMARK_CAPTURE(BM_CoroutineForm, co_put_unsynced, Kind::kPutUnsynced)->UseManualTime();
BENCHMARK_CAPTURE(BM_CoroutineForm, co_get_pending, Kind::kGetPending)->UseManualTime();
BENCHMARK_CAPTURE(BM_CoroutineForm, co_get_disk, Kind::kGetDisk)->UseManualTime();
BENCHMARK_CAPTURE(BM_CoroutineForm, co_put_other_shard, Kind::kPutOtherShard)->UseManualTime();

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

// The calls that span shards (Scan, Sync) and Tail, in their three forms.
// The asynchronous form does the work (engine/fan_out.h); the blocking form
// waits for it on a future, and the coroutine form awaits it
// (scheduler/callback_awaitable.h), so the three cannot drift apart.
#include <future>
#include <memory>
#include <queue>
#include <utility>

#include "engine/engine_impl.h"
#include "engine/fan_out.h"

namespace dmalog::engine {
namespace {

// Blocks until `start(callback)`'s callback has run, and returns what it got.
// The callback owns the promise, so the thread that fulfils it is done with
// it before it is freed.
template <typename R, typename StartFn>
R WaitForCallback(StartFn start) {
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> future = promise->get_future();
  start(std::function<void(R)>([promise](R r) { promise->set_value(std::move(r)); }));
  return future.get();
}

// The first `max_keys` keys of `parts` (each in key order; no key in two
// parts) in key order: a k-way merge on a heap of each part's next key.
std::vector<KeyValue> MergeByKey(std::vector<std::vector<KeyValue>>& parts, uint64_t max_keys) {
  struct Head {
    const std::string* key;
    uint32_t part;
  };
  auto later = [](const Head& a, const Head& b) { return *a.key > *b.key; };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  std::vector<size_t> next(parts.size(), 0);
  for (uint32_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].empty()) heads.push(Head{&parts[i][0].key, i});
  }
  std::vector<KeyValue> out;
  // Bounded by max_keys and by the keys the parts hold.
  while (!heads.empty() && out.size() < max_keys) {
    const uint32_t i = heads.top().part;
    heads.pop();
    assert(out.empty() || out.back().key < parts[i][next[i]].key);
    out.push_back(std::move(parts[i][next[i]]));
    if (++next[i] < parts[i].size()) heads.push(Head{&parts[i][next[i]].key, i});
  }
  return out;
}

Status TailShardError(uint32_t shard, uint32_t shard_count) {
  return Status::InvalidArgument(
      "shard " + std::to_string(shard) + " does not exist; the database has " +
      std::to_string(shard_count) + " shards (0 to " + std::to_string(shard_count - 1) + ")");
}

}  // namespace

// ---- Scan.

void EngineImpl::ScanAsync(const ScanOptions& o, ScanCallback done) {
  OpGate::Pass pass = gate_.Enter();  // Until `done` returns (fan_out.h).
  if (!pass) return done(Closed());
  using Part = Result<std::vector<KeyValue>>;
  auto merge = [max_keys = o.max_keys, done = std::move(done)](std::vector<Part> parts) {
    std::vector<std::vector<KeyValue>> sorted;
    sorted.reserve(parts.size());
    for (Part& part : parts) {
      if (!part.ok()) return done(part.status());
      sorted.push_back(std::move(*part));
    }
    done(MergeByKey(sorted, max_keys));
  };
  auto make_for = [this, o](uint32_t i) {
    Shard* shard = shards_[i].get();
    return [shard, o] { return shard->Scan(o.from, o.to, o.max_keys); };
  };
  FanOut<Part>(*group_, shards_, all_shards_, foreground_queue_, make_for, std::move(merge),
               std::move(pass));
}

Result<std::vector<KeyValue>> EngineImpl::Scan(const ScanOptions& o) {
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Scan"));
  return WaitForCallback<Result<std::vector<KeyValue>>>(
      [this, &o](ScanCallback done) { ScanAsync(o, std::move(done)); });
}

Task<Result<std::vector<KeyValue>>> EngineImpl::CoScan(const ScanOptions& o) {
  return CoroutineForm<Result<std::vector<KeyValue>>>(
      "CoScan", [this, &o](ScanCallback done) { ScanAsync(o, std::move(done)); });
}

// ---- Tail.

void EngineImpl::TailAsync(const TailOptions& o, TailCallback done) {
  OpGate::Pass pass = gate_.Enter();  // Until `done` returns (fan_out.h).
  if (!pass) return done(Closed());
  if (o.shard >= shard_count_) return done(TailShardError(o.shard, shard_count_));
  using Part = Result<std::vector<LogRecord>>;
  auto one = [done = std::move(done)](std::vector<Part> parts) { done(std::move(parts[0])); };
  auto make_for = [this, o](uint32_t i) {
    Shard* shard = shards_[i].get();
    return [shard, o] { return shard->Tail(o.from_sequence, o.max_records); };
  };
  FanOut<Part>(*group_, shards_, {o.shard}, foreground_queue_, make_for, std::move(one),
               std::move(pass));
}

Result<std::vector<LogRecord>> EngineImpl::Tail(const TailOptions& o) {
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Tail"));
  return WaitForCallback<Result<std::vector<LogRecord>>>(
      [this, &o](TailCallback done) { TailAsync(o, std::move(done)); });
}

Task<Result<std::vector<LogRecord>>> EngineImpl::CoTail(const TailOptions& o) {
  return CoroutineForm<Result<std::vector<LogRecord>>>(
      "CoTail", [this, &o](TailCallback done) { TailAsync(o, std::move(done)); });
}

// ---- Sync.

void EngineImpl::SyncAsync(StatusCallback done) {
  OpGate::Pass pass = gate_.Enter();  // Until `done` returns (fan_out.h).
  if (!pass) return done(Closed());
  // Each part is posted after every write this caller saw acknowledged
  // (each inbox is FIFO), so those writes are queued or durable when its
  // shard syncs.
  auto combine = [this, done = std::move(done)](std::vector<Status> parts) {
    Status first_error;
    for (Status& s : parts) {
      if (!s.ok() && first_error.ok()) first_error = std::move(s);
    }
    // A sync=false write's error, if one came back since the last call.
    // When a shard failed, its own error names the same cause. The pass is
    // still held, so the engine is alive.
    Status deferred = deferred_errors_.Take();
    if (first_error.ok()) return done(std::move(deferred));
    deferred.IgnoreError();
    done(std::move(first_error));
  };
  auto make_for = [this](uint32_t i) {
    Shard* shard = shards_[i].get();
    return [shard] { return shard->Sync(); };
  };
  FanOut<Status>(*group_, shards_, all_shards_, foreground_queue_, make_for, std::move(combine),
                 std::move(pass));
}

Status EngineImpl::Sync() {
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Sync"));
  return WaitForCallback<Status>([this](StatusCallback done) { SyncAsync(std::move(done)); });
}

Task<Status> EngineImpl::CoSync() {
  return CoroutineForm<Status>("CoSync",
                               [this](StatusCallback done) { SyncAsync(std::move(done)); });
}

}  // namespace dmalog::engine

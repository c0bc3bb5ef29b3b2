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

// A scan's second round: the values to read on each shard, and where each
// goes in the result.
struct ScanPlan {
  std::vector<KeyValue> out;                // In key order; pending values filled.
  std::vector<std::vector<ScanHit>> reads;  // Per shard: hits whose value is on disk.
  std::vector<std::vector<size_t>> slots;   // Per shard: each read's index in `out`.
  std::vector<uint32_t> shards_with_reads;
};

// Picks the first `max_keys` of the shards' hits (each part in key order; no
// key in two parts) by a k-way merge on a heap of each part's next key.
ScanPlan PlanScan(std::vector<std::vector<ScanHit>>& parts, uint64_t max_keys) {
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
  ScanPlan plan;
  plan.reads.resize(parts.size());
  plan.slots.resize(parts.size());
  // Bounded by max_keys and by the hits the parts hold.
  while (!heads.empty() && plan.out.size() < max_keys) {
    const uint32_t i = heads.top().part;
    heads.pop();
    ScanHit& hit = parts[i][next[i]];
    assert(plan.out.empty() || plan.out.back().key < hit.key);
    if (hit.entry) {
      plan.slots[i].push_back(plan.out.size());
      plan.out.push_back(KeyValue{hit.key, std::string()});
      plan.reads[i].push_back(std::move(hit));
    } else {
      plan.out.push_back(KeyValue{std::move(hit.key), std::move(hit.value)});
    }
    if (++next[i] < parts[i].size()) heads.push(Head{&parts[i][next[i]].key, i});
  }
  for (uint32_t i = 0; i < parts.size(); ++i) {
    if (!plan.reads[i].empty()) plan.shards_with_reads.push_back(i);
  }
  return plan;
}

// The scan's second round: each shard in the plan reads its kept hits'
// values, and `done` gets them all in key order.
void ReadScanValues(sched::ExecutorGroup& group, const std::vector<std::unique_ptr<Shard>>& shards,
                    const std::vector<sched::QueueId>& queues, ScanPlan plan,
                    const Engine::ScanCallback& done, OpGate::Pass pass) {
  if (plan.shards_with_reads.empty()) return done(std::move(plan.out));
  auto shared = std::make_shared<ScanPlan>(std::move(plan));
  using Values = Result<std::vector<KeyValue>>;
  auto place = [shared, done](std::vector<Values> parts, OpGate::Pass /*pass*/) {
    for (size_t p = 0; p < parts.size(); ++p) {
      if (!parts[p].ok()) return done(parts[p].status());
      const uint32_t shard = shared->shards_with_reads[p];
      std::vector<KeyValue>& values = *parts[p];
      assert(values.size() == shared->slots[shard].size());
      for (size_t j = 0; j < values.size(); ++j) {
        shared->out[shared->slots[shard][j]].value = std::move(values[j].value);
      }
    }
    done(std::move(shared->out));
  };
  auto make_for = [&shards, shared](uint32_t i) {
    Shard* shard = shards[i].get();
    return [shard, hits = std::move(shared->reads[i])]() mutable {
      return shard->ReadHits(std::move(hits));
    };
  };
  FanOut<Values>(group, shards, shared->shards_with_reads, queues, make_for, std::move(place),
                 std::move(pass));
}

Status TailShardError(uint32_t shard, uint32_t shard_count) {
  return Status::InvalidArgument(
      "shard " + std::to_string(shard) + " does not exist; the database has " +
      std::to_string(shard_count) + " shards (0 to " + std::to_string(shard_count - 1) + ")");
}

}  // namespace

// ---- Scan.

// Two rounds: each shard takes its snapshot and yields up to max_keys
// keys; the merge keeps the first max_keys; each shard then reads the values
// of the ones it holds. A shard's surplus keys cost no read.
void EngineImpl::ScanAsync(const ScanOptions& o, ScanCallback done) {
  OpGate::Pass pass = gate_.Enter();  // Until `done` returns (fan_out.h).
  if (!pass) return done(Closed());
  using Keys = Result<std::vector<ScanHit>>;
  auto pick = [this, max_keys = o.max_keys, done = std::move(done)](std::vector<Keys> parts,
                                                                    OpGate::Pass held) {
    std::vector<std::vector<ScanHit>> sorted;
    sorted.reserve(parts.size());
    for (Keys& part : parts) {
      if (!part.ok()) return done(part.status());
      sorted.push_back(std::move(*part));
    }
    ReadScanValues(*group_, shards_, foreground_queue_, PlanScan(sorted, max_keys), done,
                   std::move(held));
  };
  auto make_for = [this, o](uint32_t i) {
    Shard* shard = shards_[i].get();
    return [shard, o] { return shard->ScanKeys(o.from, o.to, o.max_keys); };
  };
  FanOut<Keys>(*group_, shards_, all_shards_, foreground_queue_, make_for, std::move(pick),
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
  auto one = [done = std::move(done)](std::vector<Part> parts, OpGate::Pass /*pass*/) {
    done(std::move(parts[0]));
  };
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
  auto combine = [this, done = std::move(done)](std::vector<Status> parts, OpGate::Pass /*pass*/) {
    Status first_error;
    for (Status& s : parts) {
      if (!s.ok() && first_error.ok()) first_error = std::move(s);
    }
    // A sync=false write's error, if one came back since the last call.
    // When a shard failed, its own error names the same cause. The pass is
    // still held, so the engine is alive.
    Status deferred = deferred_errors_.First();
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

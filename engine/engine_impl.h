// EngineImpl: the Engine behind the public API. It owns the directory lock,
// the executor group and one Shard per executor, and routes every call to
// its key's shard through submit_to. It holds no data itself: shards do.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "dmalog/engine.h"
#include "engine/engine_hooks.h"
#include "engine/op_gate.h"
#include "engine/request_path.h"
#include "engine/shard.h"
#include "io/fs.h"
#include "scheduler/callback_awaitable.h"
#include "scheduler/executor_group.h"

namespace dmalog::engine {

// InvalidArgument naming the first option out of its range (engine/options.cc).
Status ValidateOptions(const Options& o);

class EngineImpl final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const Options& options, const EngineHooks& hooks);
  ~EngineImpl() override;

  Status Put(const WriteOptions& options, std::string_view key, std::string_view value) override;
  Status Delete(const WriteOptions& options, std::string_view key) override;
  Status Write(const WriteOptions& options, const WriteBatch& batch) override;
  Result<std::string> Get(std::string_view key) override;
  Result<std::vector<KeyValue>> Scan(const ScanOptions& options) override;
  Result<std::vector<LogRecord>> Tail(const TailOptions& options) override;
  EngineStats Stats() override;
  Status Sync() override;
  Status Close() override;

  void PutAsync(const WriteOptions& options, std::string_view key, std::string_view value,
                StatusCallback done) override;
  void DeleteAsync(const WriteOptions& options, std::string_view key, StatusCallback done) override;
  void WriteAsync(const WriteOptions& options, const WriteBatch& batch,
                  StatusCallback done) override;
  void GetAsync(std::string_view key, GetCallback done) override;
  void ScanAsync(const ScanOptions& options, ScanCallback done) override;
  void TailAsync(const TailOptions& options, TailCallback done) override;
  void SyncAsync(StatusCallback done) override;
  void StatsAsync(StatsCallback done) override;

  Task<Status> CoPut(const WriteOptions& options, std::string_view key,
                     std::string_view value) override;
  Task<Status> CoDelete(const WriteOptions& options, std::string_view key) override;
  Task<Status> CoWrite(const WriteOptions& options, const WriteBatch& batch) override;
  Task<Result<std::string>> CoGet(std::string_view key) override;
  Task<Result<std::vector<KeyValue>>> CoScan(const ScanOptions& options) override;
  Task<Result<std::vector<LogRecord>>> CoTail(const TailOptions& options) override;
  Task<Status> CoSync() override;
  Task<Result<EngineStats>> CoStats() override;
  Status Spawn(uint32_t shard, Task<void> task) override;

  uint32_t shard_count() const noexcept override { return shard_count_; }
  uint32_t ShardOf(std::string_view key) const noexcept override;

 private:
  EngineImpl(const Options& options, io::DirectoryLock lock, uint32_t shard_count,
             uint64_t segment_size_bytes);
  Status StartExecutors(const EngineHooks& hooks);
  Status OpenShards();
  // InvalidArgument naming two keys when the batch spans shards.
  Result<uint32_t> BatchShard(const WriteBatch& batch) const;
  static Status Closed();  // What a call gets once Close has begun.
  // True on one of this engine's executor threads (not another engine's).
  bool OnOwnThread() const noexcept;
  // InvalidArgument for a blocking `call` made on any executor thread (of
  // this engine: it would wait for itself; of another: a cycle of engines
  // blocking on each other would hang); OK elsewhere.
  static Status CheckBlockingAllowed(std::string_view call);
  // InvalidArgument for a coroutine-form `call` made anywhere but on this
  // engine's threads (it reaches the shards through the current executor).
  Status CheckCoroutineAllowed(std::string_view call) const;
  // A write request for shard `i` (its key and value borrowed).
  WriteRequest MakeWrite(uint32_t i, format::RecordType type, std::string_view key,
                         std::string_view value, uint32_t entries, bool sync) const;
  Status SubmitWrite(const WriteOptions& o, uint32_t shard, format::RecordType type,
                     std::string_view key, std::string_view value, uint32_t entries);
  // The coroutine form of a write to shard `i` (engine_impl.cc).
  Task<Status> CoWriteTo(std::string_view call, const WriteOptions& o, uint32_t i,
                         format::RecordType type, std::string_view key, std::string_view value,
                         uint32_t entries);
  void WriteAsyncTo(const WriteOptions& o, uint32_t shard, format::RecordType type,
                    std::string_view key, std::string_view value, uint32_t entries,
                    StatusCallback done);

  // A coroutine form: awaits the asynchronous form that `start(done)`
  // begins, holding a gate pass across the await so that Close waits until
  // the task has its answer. Checks the thread when first resumed.
  template <typename R, typename StartFn>
  Task<R> CoroutineForm(std::string_view call, StartFn start) {
    if (Status s = CheckCoroutineAllowed(call); !s.ok()) co_return s;
    const OpGate::Pass pass = gate_.Enter();
    if (!pass) co_return Closed();
    co_return co_await sched::AwaitCallback<R>(std::move(start));
  }
  // Destroys shard i, whose loops never started, on its executor.
  void DiscardUnstartedShard(uint32_t i);
  // Close's answer for shard i when its executor is gone (`why`).
  Status LeakUnreachableShard(uint32_t i, const Status& why);
  // What Stats reports with no shard to ask (the engine is closed).
  EngineStats BaseStats() const;

  const Options options_;
  io::DirectoryLock lock_;
  const uint32_t shard_count_;
  const uint64_t segment_size_bytes_;
  // Before group_: outlives the executors, which hold its requests.
  RequestPools request_pools_;
  std::unique_ptr<sched::ExecutorGroup> group_;
  std::vector<sched::QueueId> foreground_queue_;
  std::vector<sched::QueueId> background_queue_;
  std::vector<uint32_t> all_shards_;  // 0 .. shard_count_ - 1, for FanOut.
  // Options::read_on_calling_thread, off when a hook wraps the backend.
  bool read_on_calling_thread_ = true;
  // shards_[i] lives on executor i and is only touched there, but for its
  // "any thread" calls (a blocking Get's TryGetOnCaller, WriteComing).
  std::vector<std::unique_ptr<Shard>> shards_;
  std::mutex close_mu_;  // Held for the whole of Close.
  Status close_result_;  // What the first Close returned; guarded by close_mu_.
  OpGate gate_;          // Close waits for the calls in progress, and refuses later ones.
  DeferredErrors deferred_errors_;
  CallerWait caller_wait_;
};

}  // namespace dmalog::engine

#include "engine/engine_impl.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "engine/format.h"
#include "engine/manifest.h"
#include "engine/record.h"
#include "engine/request_path.h"

namespace dmalog {

Result<std::unique_ptr<Engine>> Engine::Open(const Options& options) {
  return engine::EngineImpl::Open(options, engine::EngineHooks{});
}

namespace engine {

Result<std::unique_ptr<Engine>> OpenEngine(const Options& options, const EngineHooks& hooks) {
  return EngineImpl::Open(options, hooks);
}

namespace {

// Scheduling of every shard's two queues: writes and reads in a
// latency-sensitive foreground queue; segment preparation (and, later,
// compaction) in a low-share background queue that cannot starve it.
constexpr uint32_t kForegroundShares = 800;
constexpr uint32_t kBackgroundShares = 100;
constexpr auto kForegroundLatencyBudget = std::chrono::microseconds(500);
constexpr uint32_t kRingDepth = 256;
constexpr uint32_t kReadBuffers = 128;
constexpr uint32_t kReadBufferBytes = 128u << 10;

std::string ShardDir(const std::string& db, uint32_t shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "/shard-%03u", shard);
  return db + name;
}

template <typename Fn>
auto RunOn(sched::ExecutorGroup& group, uint32_t shard, sched::QueueId queue, Fn fn) {
  return group.submit_to(shard, std::move(fn), queue).get();
}

}  // namespace

EngineImpl::EngineImpl(const Options& options, io::DirectoryLock lock, uint32_t shard_count,
                       uint64_t segment_size_bytes)
    : options_(options),
      lock_(std::move(lock)),
      shard_count_(shard_count),
      segment_size_bytes_(segment_size_bytes),
      // On one CPU a spinning caller would only delay the executor it waits for.
      caller_wait_(std::thread::hardware_concurrency() > 1 ? uint64_t{options.caller_spin_us} * 1000
                                                           : 0) {}

Result<std::unique_ptr<Engine>> EngineImpl::Open(const Options& options, const EngineHooks& hooks) {
  // Recovery would hold that executor for the whole open, and the engine
  // could then only be closed there, which Close refuses.
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Open"));
  DMALOG_RETURN_IF_ERROR(ValidateOptions(options));
  Result<bool> exists = io::PathExists(options.db_path);
  if (!exists.ok()) return exists.status();
  if (!*exists && !options.create_if_missing) {
    return Status::NotFound("database " + options.db_path +
                            " does not exist; create it with create_if_missing");
  }
  if (!options.create_if_missing) {
    // Checked before the lock file is made: a mistyped path must not
    // become a database (nor get its preallocated segments).
    Result<bool> has_manifest = io::PathExists(options.db_path + "/MANIFEST");
    if (!has_manifest.ok()) return has_manifest.status();
    if (!*has_manifest) {
      return Status::NotFound("directory " + options.db_path +
                              " holds no dmalog database (no MANIFEST); check the path, or "
                              "create a database there with create_if_missing");
    }
  }
  DMALOG_RETURN_IF_ERROR(io::CreateDirectories(options.db_path));
  Result<io::DirectoryLock> lock = io::DirectoryLock::Acquire(options.db_path);
  if (!lock.ok()) return lock.status();
  Result<Manifest> manifest = LoadOrCreateManifest(options);
  if (!manifest.ok()) return manifest.status();
  std::unique_ptr<EngineImpl> engine(
      new EngineImpl(options, std::move(*lock), manifest->shards, manifest->segment_size_bytes));
  DMALOG_RETURN_IF_ERROR(engine->StartExecutors(hooks));
  Status s = engine->OpenShards();
  if (!s.ok()) {
    engine->Close().IgnoreError();  // The open error is the one to report.
    return s;
  }
  return std::unique_ptr<Engine>(std::move(engine));
}

Status EngineImpl::StartExecutors(const EngineHooks& hooks) {
  sched::GroupOptions g;
  g.shards = shard_count_;
  for (uint32_t i = 0; i < shard_count_ && !options_.cpus.empty(); ++i) {
    g.cpus.push_back(options_.cpus[i % options_.cpus.size()]);
  }
  g.executor.backend.ring_depth = kRingDepth;
  g.executor.backend.force_fallback = options_.force_io_fallback;
  g.executor.backend.require_io_uring = options_.require_direct_io;
  g.executor.backend.wrap = hooks.wrap_backend;
  // A wrapped backend (fault injection) must see every read.
  read_on_calling_thread_ = options_.read_on_calling_thread &&
                            (!hooks.wrap_backend || hooks.keep_reads_on_calling_thread);
  g.executor.backend.quiet = options_.quiet;
  // On one CPU, polling would only delay the thread that would post to us.
  g.executor.idle_poll = std::chrono::microseconds(
      std::thread::hardware_concurrency() > 1 ? options_.idle_poll_us : 0);
  g.executor.buffer_count = kReadBuffers;
  g.executor.buffer_size_bytes = kReadBufferBytes;
  Result<std::unique_ptr<sched::ExecutorGroup>> group = sched::ExecutorGroup::Start(g);
  if (!group.ok()) return group.status();
  group_ = std::move(*group);
  for (uint32_t i = 0; i < shard_count_; ++i) {
    sched::QueueOptions fg;
    fg.name = "foreground";
    fg.shares = kForegroundShares;
    fg.latency = sched::Latency::Matters{kForegroundLatencyBudget};
    Result<sched::QueueId> f = group_->CreateQueue(i, fg);
    if (!f.ok()) return f.status();
    sched::QueueOptions bg;
    bg.name = "background";
    bg.shares = kBackgroundShares;
    Result<sched::QueueId> b = group_->CreateQueue(i, bg);
    if (!b.ok()) return b.status();
    foreground_queue_.push_back(*f);
    background_queue_.push_back(*b);
    all_shards_.push_back(i);
  }
  return Status::OK();
}

Status EngineImpl::OpenShards() {
  shards_.resize(shard_count_);
  std::vector<std::future<Result<std::unique_ptr<Shard>>>> opening;
  for (uint32_t i = 0; i < shard_count_; ++i) {
    ShardOptions so;
    so.shard = i;
    so.dir = ShardDir(options_.db_path, i);
    so.segment_size_bytes = segment_size_bytes_;
    so.flush_bytes_max = options_.flush_bytes_max;
    so.spare_segments = options_.segments_preallocated;
    so.group_commit_linger_us = options_.group_commit_linger_us;
    so.recovery_mode = options_.recovery_mode;
    so.use_hint_files = options_.use_hint_files;
    so.read_on_calling_thread = read_on_calling_thread_;
    so.file_options.require_direct_io = options_.require_direct_io;
    so.file_options.quiet = options_.quiet;
    // Every shard recovers at once, each on its own executor.
    opening.push_back(group_->submit_to(
        i, [so] { return Shard::Open(so); }, foreground_queue_[i]));
  }
  Status first_error;
  for (uint32_t i = 0; i < shard_count_; ++i) {
    Result<std::unique_ptr<Shard>> shard = opening[i].get();
    if (!shard.ok()) {
      if (first_error.ok()) first_error = shard.status();
      continue;
    }
    shards_[i] = std::move(*shard);
    // Said at once: the figure is in Stats() only for this open, and a
    // tool that does not print Stats() would otherwise hide it.
    if (shards_[i]->recovery_dropped_bytes() > 0 && !options_.quiet) {
      std::fprintf(stderr, "dmalog: %s: shard %u: recovery dropped %llu bytes: %s\n",
                   options_.db_path.c_str(), i,
                   static_cast<unsigned long long>(shards_[i]->recovery_dropped_bytes()),
                   shards_[i]->recovery_note().c_str());
    }
  }
  if (!first_error.ok()) {
    for (uint32_t i = 0; i < shard_count_; ++i) DiscardUnstartedShard(i);
    return first_error;
  }
  for (uint32_t i = 0; i < shard_count_; ++i) {
    Shard* shard = shards_[i].get();
    const sched::QueueId fg = foreground_queue_[i], bg = background_queue_[i];
    Status s = RunOn(*group_, i, fg, [shard, fg, bg] { shard->StartLoops(fg, bg); });
    if (!s.ok()) {
      // Shard i's executor is gone (Close keeps the shard); the later ones
      // never started their loops.
      for (uint32_t j = i + 1; j < shard_count_; ++j) DiscardUnstartedShard(j);
      return s;
    }
  }
  return Status::OK();
}

void EngineImpl::DiscardUnstartedShard(uint32_t i) {
  // Without loops, Close must not Stop it (Stop waits for the loops to
  // end): it is destroyed on its own thread now, or kept if that is gone.
  if (!shards_[i]) return;
  Status s = RunOn(*group_, i, foreground_queue_[i], [this, i] { shards_[i].reset(); });
  // The open's own error is the one to report.
  if (!s.ok()) LeakUnreachableShard(i, s).IgnoreError();
}

EngineImpl::~EngineImpl() {
  if (sched::Executor::Current() != nullptr) {
    // Destroying the engine on an executor thread cannot stop it safely:
    // see CheckBlockingAllowed.
    std::fprintf(stderr,
                 "dmalog: the Engine was destroyed on an executor thread (in a callback or a "
                 "coroutine of a dmalog engine); destroy it from a thread of your own\n");
    std::abort();
  }
  Close().IgnoreError();  // Close() reports its errors.
}

Status EngineImpl::Close() {
  // On an executor thread, the RunOn calls below could wait for themselves.
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Close"));
  // A second Close waits until the first is done, and returns its result.
  std::lock_guard<std::mutex> closing(close_mu_);
  // Calls in progress on other threads finish first; later ones get Aborted.
  if (!gate_.CloseAndDrain()) return close_result_;
  Status result;
  for (uint32_t i = 0; i < shards_.size() && group_; ++i) {
    if (!shards_[i]) continue;
    Shard* shard = shards_[i].get();
    Status s = RunOn(*group_, i, foreground_queue_[i], [shard] { return shard->Stop(); });
    if (!s.ok() && !s.IsAborted()) {
      // The shard stopped, but a write error had stopped its writes: a
      // failed flush may have lost writes acknowledged with sync = false,
      // so Close must not say OK.
      if (result.ok()) result = std::move(s);
      s = Status::OK();
    }
    if (s.ok()) {
      s = RunOn(*group_, i, foreground_queue_[i], [this, i] { shards_[i].reset(); });
    }
    if (!s.ok()) {
      s = LeakUnreachableShard(i, s);
      if (result.ok()) result = s;
    }
  }
  if (group_) group_->Stop();
  lock_.Unlock();
  // A sync=false write that failed after its call returned.
  Status deferred = deferred_errors_.First();
  if (result.ok()) {
    result = std::move(deferred);
  } else {
    deferred.IgnoreError();  // The shard's error names the same cause.
  }
  close_result_ = result;
  return result;
}

Status EngineImpl::LeakUnreachableShard(uint32_t i, const Status& why) {
  // Only an executor that stopped on its own (its backend's Poll failed:
  // it printed why) refuses these calls. It destroyed the shard's tasks, whose frames
  // the shard's wait lists still point into, so destroying the shard here
  // would touch freed memory: it is leaked, with its open files, instead.
  // What it acknowledged is durable; the next open recovers it. Kept
  // reachable (as the executor keeps a buffer pool it cannot free), so leak
  // checkers see a deliberate keep, not a loss.
  static std::mutex graveyard_mu;
  static auto* graveyard = new std::vector<std::unique_ptr<Shard>>();
  {
    std::lock_guard<std::mutex> lock(graveyard_mu);
    graveyard->push_back(std::move(shards_[i]));
  }
  std::fprintf(stderr, "dmalog: shard %u could not be stopped (%s); its memory is not freed\n", i,
               why.ToString().c_str());
  return Status::IOError("shard " + std::to_string(i) +
                         " stopped before Close (its executor's I/O backend failed; stderr has "
                         "the error): what it acknowledged as durable is on disk, reopen the "
                         "database to recover it");
}

Status EngineImpl::Closed() { return Status::Aborted("the database is closed"); }

bool EngineImpl::OnOwnThread() const noexcept {
  const sched::Executor* executor = sched::Executor::Current();
  return executor != nullptr && executor->group() == group_.get();
}

Status EngineImpl::CheckBlockingAllowed(std::string_view call) {
  // Any engine's executor, not only this one's: on its own, a blocking call
  // waits for itself; on another engine's, two callbacks that each block on
  // the other's engine wait for each other, and neither check could see it.
  if (sched::Executor::Current() == nullptr) return Status::OK();
  return Status::InvalidArgument(
      std::string(call) +
      " was called on an executor thread (in a callback or a coroutine of a dmalog engine), "
      "where blocking can wait for itself; call it from a thread of your own, or use the "
      "asynchronous form (or the coroutine form on this engine's own threads)");
}

Status EngineImpl::CheckCoroutineAllowed(std::string_view call) const {
  if (OnOwnThread()) return Status::OK();
  return Status::InvalidArgument(
      std::string(call) +
      " runs only on the engine's own threads (a task started with "
      "Spawn); from other threads use the blocking or asynchronous form");
}

uint32_t EngineImpl::ShardOf(std::string_view key) const noexcept {
  return ShardForKey(key, shard_count_);
}

Result<uint32_t> EngineImpl::BatchShard(const WriteBatch& batch) const {
  const uint32_t shard = ShardOf(batch.first_key());
  BatchReader reader(batch.payload());
  for (uint32_t i = 0; i < batch.count(); ++i) {
    Result<BatchEntry> e = reader.Next();
    if (!e.ok()) return e.status();
    if (ShardOf(e->key) != shard) {
      return Status::InvalidArgument(
          "the batch's keys '" + std::string(batch.first_key()) + "' and '" + std::string(e->key) +
          "' are on different shards, so it cannot be atomic; give "
          "related keys a common hash tag, e.g. user:{42}:name and user:{42}:email");
    }
  }
  return shard;
}

WriteRequest EngineImpl::MakeWrite(uint32_t i, format::RecordType type, std::string_view key,
                                   std::string_view value, uint32_t entries, bool sync) const {
  WriteRequest request;
  request.shard = shards_[i].get();
  request.type = type;
  request.key = key;
  request.value = value;
  request.entries = entries;
  request.sync = sync;
  return request;
}

Status EngineImpl::SubmitWrite(const WriteOptions& o, uint32_t i, format::RecordType type,
                               std::string_view key, std::string_view value, uint32_t entries) {
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed(type == format::kBatchType ? "Write"
                                              : type == format::kPutType ? "Put"
                                                                         : "Delete"));
  const OpGate::Pass pass = gate_.Enter();
  if (!pass) return Closed();
  Shard* shard = shards_[i].get();
  if (!o.sync && type != format::kBatchType) {
    // Checked here because the caller will not wait for the shard.
    DMALOG_RETURN_IF_ERROR(CheckKeyValueLimits(key, value));
    if (shard->read_only()) {
      return Status::ReadOnly("shard " + std::to_string(i) +
                              " refuses writes after an earlier error; see Stats()");
    }
    return PostWriteNoWait(*group_, i, shard, type, key, value, &deferred_errors_, &request_pools_);
  }
  WriteRequest request = MakeWrite(i, type, key, value, entries, o.sync);
  return PostWriteAndWait(*group_, i, request, caller_wait_);
}

Status EngineImpl::Put(const WriteOptions& o, std::string_view key, std::string_view value) {
  return SubmitWrite(o, ShardOf(key), format::kPutType, key, value, 1);
}

Status EngineImpl::Delete(const WriteOptions& o, std::string_view key) {
  return SubmitWrite(o, ShardOf(key), format::kDeleteType, key, {}, 1);
}

Status EngineImpl::Write(const WriteOptions& o, const WriteBatch& batch) {
  if (batch.empty()) return gate_.closed() ? Closed() : Status::OK();
  Result<uint32_t> i = BatchShard(batch);
  if (!i.ok()) return i.status();
  return SubmitWrite(o, *i, format::kBatchType, {}, batch.payload(), batch.count());
}

Result<std::string> EngineImpl::Get(std::string_view key) {
  DMALOG_RETURN_IF_ERROR(CheckBlockingAllowed("Get"));
  const OpGate::Pass pass = gate_.Enter();
  if (!pass) return Closed();
  const uint32_t i = ShardOf(key);
  if (std::optional<Result<std::string>> r = shards_[i]->TryGetOnCaller(key)) return *std::move(r);
  GetRequest request;
  request.shard = shards_[i].get();
  request.key = key;
  return PostGetAndWait(*group_, i, request, caller_wait_);
}

void EngineImpl::PutAsync(const WriteOptions& o, std::string_view key, std::string_view value,
                          StatusCallback done) {
  WriteAsyncTo(o, ShardOf(key), format::kPutType, key, value, 1, std::move(done));
}

void EngineImpl::DeleteAsync(const WriteOptions& o, std::string_view key, StatusCallback done) {
  WriteAsyncTo(o, ShardOf(key), format::kDeleteType, key, {}, 1, std::move(done));
}

void EngineImpl::WriteAsync(const WriteOptions& o, const WriteBatch& batch, StatusCallback done) {
  if (batch.empty()) return done(gate_.closed() ? Closed() : Status::OK());
  Result<uint32_t> i = BatchShard(batch);
  if (!i.ok()) return done(i.status());
  WriteAsyncTo(o, *i, format::kBatchType, {}, batch.payload(), batch.count(), std::move(done));
}

void EngineImpl::WriteAsyncTo(const WriteOptions& o, uint32_t i, format::RecordType type,
                              std::string_view key, std::string_view value, uint32_t entries,
                              StatusCallback done) {
  const OpGate::Pass pass = gate_.Enter();  // Until the request is queued.
  if (!pass) return done(Closed());
  PostWriteAsync(*group_, i, MakeWrite(i, type, key, value, entries, o.sync), std::move(done),
                 &request_pools_);
}

void EngineImpl::GetAsync(std::string_view key, GetCallback done) {
  const OpGate::Pass pass = gate_.Enter();  // Until the request is queued.
  if (!pass) return done(Closed());
  const uint32_t i = ShardOf(key);
  PostGetAsync(*group_, i, shards_[i].get(), key, std::move(done), &request_pools_);
}

// The coroutine forms take the path of the asynchronous ones (the shard's
// inbox, which keeps a task's asynchronous and coroutine calls in order),
// except on the shard's own executor with none of this thread's messages
// still queued there: then they call the shard at once (DirectCall), which
// keeps the same order without the hop. The views the requests hold stay
// valid while the caller awaits (engine.h).
Task<Status> EngineImpl::CoWriteTo(std::string_view call, const WriteOptions& o, uint32_t i,
                                   format::RecordType type, std::string_view key,
                                   std::string_view value, uint32_t entries) {
  if (Status s = CheckCoroutineAllowed(call); !s.ok()) co_return s;
  const OpGate::Pass pass = gate_.Enter();  // Held across the await.
  if (!pass) co_return Closed();
  const sched::Executor* executor = sched::Executor::Current();
  if (executor->shard() == i && !executor->has_self_messages()) {
    // Named, not a temporary inside the co_await (GCC 12, see engine.h).
    const WriteRequest request = MakeWrite(i, type, key, value, entries, o.sync);
    co_return co_await DirectCall<WriteRequest>(request);
  }
  co_return co_await sched::AwaitCallback<Status>(
      [&](StatusCallback done) { WriteAsyncTo(o, i, type, key, value, entries, std::move(done)); });
}

Task<Status> EngineImpl::CoPut(const WriteOptions& o, std::string_view key,
                               std::string_view value) {
  return CoWriteTo("CoPut", o, ShardOf(key), format::kPutType, key, value, 1);
}

Task<Status> EngineImpl::CoDelete(const WriteOptions& o, std::string_view key) {
  return CoWriteTo("CoDelete", o, ShardOf(key), format::kDeleteType, key, {}, 1);
}

Task<Status> EngineImpl::CoWrite(const WriteOptions& o, const WriteBatch& batch) {
  // WriteAsync answers an empty batch (OK) and one whose keys are on two
  // shards (naming them).
  auto by_async = [this, o, b = &batch](StatusCallback done) {
    WriteAsync(o, *b, std::move(done));
  };
  if (batch.empty()) return CoroutineForm<Status>("CoWrite", by_async);
  Result<uint32_t> i = BatchShard(batch);
  if (!i.ok()) return CoroutineForm<Status>("CoWrite", by_async);
  return CoWriteTo("CoWrite", o, *i, format::kBatchType, {}, batch.payload(), batch.count());
}

Task<Result<std::string>> EngineImpl::CoGet(std::string_view key) {
  if (Status s = CheckCoroutineAllowed("CoGet"); !s.ok()) co_return s;
  const OpGate::Pass pass = gate_.Enter();  // Held across the await.
  if (!pass) co_return Closed();
  const uint32_t i = ShardOf(key);
  const sched::Executor* executor = sched::Executor::Current();
  if (executor->shard() == i && !executor->has_self_messages()) {
    GetRequest request;
    request.shard = shards_[i].get();
    request.key = key;
    co_return co_await DirectCall<GetRequest>(request);
  }
  co_return co_await sched::AwaitCallback<Result<std::string>>(
      [&](GetCallback done) { GetAsync(key, std::move(done)); });
}

Status EngineImpl::Spawn(uint32_t shard, Task<void> task) {
  const OpGate::Pass pass = gate_.Enter();  // Until the task is queued.
  if (!pass) return Closed();
  if (shard >= shard_count_) return Status::InvalidArgument("no shard " + std::to_string(shard));
  if (!group_->PostTask(shard, std::move(task), foreground_queue_[shard])) return Closed();
  return Status::OK();
}

}  // namespace engine
}  // namespace dmalog

#include "engine/request_path.h"

#include <atomic>
#include <memory>

#include "engine/shard.h"

namespace dmalog::engine {
namespace {

// ---- Messages that carry a request to its shard.
void RunWrite(sched::Executor& /*executor*/, void* arg, uint64_t /*tag*/) {
  auto* request = static_cast<WriteRequest*>(arg);
  request->shard->Submit(request);
}
void DropWrite(void* arg) {
  auto* request = static_cast<WriteRequest*>(arg);
  // Not settled with the shard, which may be gone (Close destroys the
  // shards before it stops their executors). Dropped only once the engine
  // is closing, or when the shard's executor stopped on its own (a broken
  // ring): the count then stays up, so the shard's blocking gets go to the
  // executor and get Aborted like every other call. (Had no write been on
  // its way, they go on reading what the index held, still correct.)
  request->status = Status::Aborted("the database closed before the write ran");
  request->complete(request);
}
void RunGet(sched::Executor& /*executor*/, void* arg, uint64_t /*tag*/) {
  auto* request = static_cast<GetRequest*>(arg);
  request->shard->Submit(request);
}
void DropGet(void* arg) {
  auto* request = static_cast<GetRequest*>(arg);
  request->result = Status::Aborted("the database closed before the read ran");
  request->complete(request);
}

template <typename Request>
void Post(sched::ExecutorGroup& group, uint32_t shard_index, Request* request) {
  constexpr bool kWrite = std::is_base_of_v<WriteRequest, Request>;
  const sched::Message msg{kWrite ? &RunWrite : &RunGet, kWrite ? &DropWrite : &DropGet, request,
                           0};
  // A durable write that comes during a flush cannot go out before the
  // flush completes, and that completion wakes the executor: it need not
  // be woken for the write (the shard defers wake-ups while it flushes).
  bool deferrable = false;
  if constexpr (kWrite) {
    deferrable = request->sync;
    request->shard->WriteComing();
  }
  if (!group.Post(shard_index, msg, deferrable)) msg.drop(msg.arg);  // Completes it with Aborted.
}

// ---- Blocking: the request lives on the caller's stack.
struct BlockingWrite : WriteRequest {
  sched::WakeWord done;
};
struct BlockingGet : GetRequest {
  sched::WakeWord done;
};
template <typename Blocking>
void Signal(Blocking* b) {
  b->done.Signal();
}
// Points `request` at a copy of key and value in `bytes`, whose capacity a
// pooled request keeps from earlier uses (so a warm pool allocates nothing).
void HoldCopy(std::string& bytes, WriteRequest& request, std::string_view key,
              std::string_view value) {
  bytes.assign(key).append(value);
  request.key = std::string_view(bytes).substr(0, key.size());
  request.value = std::string_view(bytes).substr(key.size());
}
// Frees a copy buffer that a large value grew past what the pool keeps.
void TrimCopy(std::string& bytes) {
  if (bytes.capacity() > kPooledCopyBytesMax) std::string().swap(bytes);
}

}  // namespace

void CallerWait::Await(sched::WakeWord& done) {
  const uint32_t others = waiting_.fetch_add(1, std::memory_order_relaxed);
  if (others == 0 && spin_ns_ > 0) {
    const uint64_t deadline_ns = sched::Executor::NowNs() + spin_ns_;
    // Bounded by the spin window.
    // The clock is read when the spin yields (sched::SpinPause says why
    // it yields: the executor this call waits for may be on this CPU).
    for (uint32_t polls = 1; !done.signalled(); ++polls) {
      if (polls % sched::kSpinPollsPerYield == 0 && sched::Executor::NowNs() >= deadline_ns) break;
      sched::SpinPause(polls);
    }
  }
  done.Wait();
  waiting_.fetch_sub(1, std::memory_order_relaxed);
}

Status PostWriteAndWait(sched::ExecutorGroup& group, uint32_t shard_index, WriteRequest& request,
                        CallerWait& wait) {
  BlockingWrite b;
  static_cast<WriteRequest&>(b) = request;
  b.complete = [](WriteRequest* r) { Signal(static_cast<BlockingWrite*>(r)); };
  Post(group, shard_index, &b);
  wait.Await(b.done);
  return std::move(b.status);
}

Result<std::string> PostGetAndWait(sched::ExecutorGroup& group, uint32_t shard_index,
                                   GetRequest& request, CallerWait& wait) {
  BlockingGet b;
  b.shard = request.shard;
  b.key = request.key;
  b.complete = [](GetRequest* r) { Signal(static_cast<BlockingGet*>(r)); };
  Post(group, shard_index, &b);
  wait.Await(b.done);
  return std::move(b.result);
}

void DeferredErrors::Record(const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (first_.ok()) first_ = status.WithContext("an earlier write with sync=false failed");
  any_.store(true, std::memory_order_release);
}

Status DeferredErrors::First() const {
  if (!any_.load(std::memory_order_acquire)) return Status::OK();
  std::lock_guard<std::mutex> lock(mu_);
  return first_;
}

Status PostWriteNoWait(sched::ExecutorGroup& group, uint32_t shard_index, Shard* shard,
                       format::RecordType type, std::string_view key, std::string_view value,
                       DeferredErrors* errors, RequestPools* pools) {
  OwnedWrite* owned = pools->owned_writes.Take();
  static_cast<WriteRequest&>(*owned) = WriteRequest{};
  HoldCopy(owned->bytes, *owned, key, value);
  owned->shard = shard;
  owned->type = type;
  owned->sync = false;
  owned->acknowledged = true;
  owned->errors = errors;
  owned->pools = pools;
  owned->complete = [](WriteRequest* r) {
    auto* self = static_cast<OwnedWrite*>(r);
    if (!self->status.ok()) self->errors->Record(self->status);
    TrimCopy(self->bytes);
    self->pools->owned_writes.Release(self);
  };
  Post(group, shard_index, owned);
  return Status::OK();
}

void PostWriteAsync(sched::ExecutorGroup& group, uint32_t shard_index, const WriteRequest& proto,
                    Engine::StatusCallback done, RequestPools* pools) {
  AsyncWrite* request = pools->async_writes.Take();
  static_cast<WriteRequest&>(*request) = proto;
  HoldCopy(request->bytes, *request, proto.key, proto.value);
  request->done = std::move(done);
  request->pools = pools;
  request->complete = [](WriteRequest* r) {
    auto* self = static_cast<AsyncWrite*>(r);
    Engine::StatusCallback callback = std::move(self->done);
    Status status = std::move(self->status);
    TrimCopy(self->bytes);
    // Back in the pool before the callback runs: the callback may post the
    // next request, and finds this one free.
    self->pools->async_writes.Release(self);
    callback(std::move(status));
  };
  Post(group, shard_index, request);
}

void PostGetAsync(sched::ExecutorGroup& group, uint32_t shard_index, Shard* shard,
                  std::string_view key, Engine::GetCallback done, RequestPools* pools) {
  AsyncGet* request = pools->async_gets.Take();
  static_cast<GetRequest&>(*request) = GetRequest{};
  request->shard = shard;
  request->bytes.assign(key);
  request->key = request->bytes;
  request->done = std::move(done);
  request->pools = pools;
  request->complete = [](GetRequest* r) {
    auto* self = static_cast<AsyncGet*>(r);
    Engine::GetCallback callback = std::move(self->done);
    Result<std::string> result = std::move(self->result);
    TrimCopy(self->bytes);
    self->pools->async_gets.Release(self);
    callback(std::move(result));
  };
  Post(group, shard_index, request);
}

}  // namespace dmalog::engine

#include "scheduler/executor.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <thread>
#include <utility>

#include "io/buffer_pool.h"
#include "io/io_errors.h"
#include "scheduler/executor_group.h"

namespace dmalog::sched {
namespace {

// The executor running on this thread; null elsewhere. Not owned.
thread_local Executor* current_executor = nullptr;

}  // namespace

// ---- Root tasks: a detached wrapper that owns the spawned Task's frame.

struct Executor::RootPromise {
  // Frames come from the thread's frame cache, as Task frames do.
  static void* operator new(std::size_t bytes) { return dmalog::detail::AllocateFrame(bytes); }
  static void operator delete(void* frame, std::size_t bytes) noexcept {
    dmalog::detail::FreeFrame(frame, bytes);
  }
  // The coroutine's parameters, seen by the promise: registers the root.
  RootPromise(Executor* ex, Task<void>& /*task*/) : executor(ex) {
    next = executor->roots_;
    if (next != nullptr) next->prev = this;
    executor->roots_ = this;
    ++executor->roots_live_;
  }
  ~RootPromise() {
    if (prev != nullptr) prev->next = next;
    if (next != nullptr) next->prev = prev;
    if (executor->roots_ == this) executor->roots_ = next;
    --executor->roots_live_;
  }
  RootTask get_return_object() noexcept;
  std::suspend_always initial_suspend() noexcept { return {}; }
  // Frees the frame (and the promise, which unlinks itself) at completion.
  std::suspend_never final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  void unhandled_exception() noexcept { std::terminate(); }

  Executor* executor;
  RootPromise* prev = nullptr;
  RootPromise* next = nullptr;
};

struct Executor::RootTask {
  using promise_type = RootPromise;
  std::coroutine_handle<RootPromise> handle;
};

Executor::RootTask Executor::RootPromise::get_return_object() noexcept {
  return RootTask{std::coroutine_handle<RootPromise>::from_promise(*this)};
}

Executor::RootTask Executor::RunRoot(Executor* /*executor*/, Task<void> task) {
  co_await std::move(task);
}

// ---- Construction and the thread.

Executor::Executor(uint32_t shard, ExecutorGroup* group, ExecutorOptions options)
    : shard_(shard), group_(group), options_(std::move(options)) {
  assert(group_ != nullptr);
}

Executor::~Executor() {
  assert(!thread_.joinable() && "ExecutorGroup joins executors before destroying them");
  assert(roots_ == nullptr);
}

Executor* Executor::Current() noexcept { return current_executor; }

void Executor::StartThread() {
  thread_ = std::thread([this] { ThreadMain(); });
}

Status Executor::AwaitInit() {
  std::unique_lock<std::mutex> lock(start_mu_);
  start_cv_.wait(lock, [this] { return init_done_; });
  return init_status_;
}

void Executor::Go(bool run_loop) {
  std::lock_guard<std::mutex> lock(start_mu_);
  go_ = true;
  run_loop_ = run_loop;
  start_cv_.notify_all();
}

void Executor::RequestStop() noexcept {
  // Under start_mu_: the thread frees the backend only after setting
  // backend_alive_ to false under the same lock.
  std::lock_guard<std::mutex> lock(start_mu_);
  stop_requested_.store(true, std::memory_order_seq_cst);
  if (backend_alive_) WakeIfSleeping();
}

void Executor::Join() {
  if (thread_.joinable()) thread_.join();
}

void Executor::ThreadMain() {
  // "dmalog-exec-N" in ps, top and perf (at most 15 characters).
  const std::string name = "dmalog-exec-" + std::to_string(shard_ % 1000);
  // Only a name for tools: a failure (a name too long) changes nothing else.
  static_cast<void>(pthread_setname_np(pthread_self(), name.c_str()));
  current_executor = this;
  io::Reactor::SetCurrent(this);
  Status status = Init();
  const bool init_ok = status.ok();
  bool run_loop = false;
  {
    std::unique_lock<std::mutex> lock(start_mu_);
    init_status_ = std::move(status);
    init_done_ = true;
    start_cv_.notify_all();
    start_cv_.wait(lock, [this] { return go_; });
    run_loop = run_loop_ && init_ok;
  }
  if (run_loop) Loop();
  if (init_ok) Shutdown();
  // Peers may still Wake() this backend until every loop has ended.
  group_->LoopDoneAndWait();
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    backend_alive_ = false;
  }
  DestroyBufferPool();
  dispatcher_.reset();
  backend_.reset();
  io::Reactor::SetCurrent(nullptr);
  current_executor = nullptr;
}

Status Executor::Init() {
  if (options_.pin_to_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.pin_to_cpu, &set);
    const int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err != 0) {
      return io::SyscallErrorStatus("pthread_setaffinity_np",
                                    "cpu " + std::to_string(options_.pin_to_cpu), err,
                                    "pick a CPU the process may run on (see taskset -p)");
    }
  }
  Result<io::OpenedBackend> opened = io::OpenBackend(options_.backend);
  if (!opened.ok()) return opened.status().WithContext("start executor " + std::to_string(shard_));
  backend_ = std::move(opened->backend);
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    backend_alive_ = true;
  }
  fallback_reason_ = std::move(opened->fallback_reason);
  DeviceLimits limits;
  limits.in_flight_max = options_.device_in_flight_max != 0 ? options_.device_in_flight_max
                                                            : options_.backend.ring_depth;
  limits.in_flight_bytes_max = options_.device_in_flight_bytes_max;
  dispatcher_ = std::make_unique<IoDispatcher>(backend_.get(), limits);
  DMALOG_RETURN_IF_ERROR(InitBufferPool());
  Result<QueueId> queue = CreateQueue(options_.default_queue);
  if (!queue.ok()) return queue.status();
  assert(*queue == kDefaultQueue);
  pending_head_.assign(group_->shards(), nullptr);
  pending_tail_.assign(group_->shards(), nullptr);
  return Status::OK();
}

// ---- Queues, tasks, timers.

Result<QueueId> Executor::CreateQueue(const QueueOptions& options) {
  assert(current_executor == this);
  DMALOG_RETURN_IF_ERROR(ValidateQueueOptions(options));
  if (queue_count_ >= kQueuesMax) {
    return Status::Busy("create task queue '" + options.name + "': executor already has " +
                        std::to_string(kQueuesMax) + " queues (kQueuesMax); reuse a queue");
  }
  const QueueId id = queue_count_++;
  queues_[id] = std::make_unique<TaskQueue>(id, options);
  queues_[id]->CatchUp(min_vruntime_);
  dispatcher_->AddClass(id, options);
  return id;
}

bool Executor::HasQueue(QueueId queue) const noexcept { return queue < queue_count_; }

void Executor::Spawn(QueueId queue, Task<void> task) {
  assert(current_executor == this && "Spawn from the executor's own thread");
  assert(HasQueue(queue) && "Spawn into a queue that does not exist");
  assert(task.valid());
  RootTask root = RunRoot(this, std::move(task));
  Schedule(root.handle, queue);
}

void Executor::Schedule(std::coroutine_handle<> handle, uint32_t queue) {
  assert(current_executor == this);
  assert(HasQueue(queue));
  TaskQueue& q = *queues_[queue];
  if (!q.Push(handle)) return;
  // The queue just became runnable.
  if (&q == running_) return;
  q.CatchUp(min_vruntime_);
  if (q.latency_matters()) {
    const uint64_t now_ns = NowNs();
    q.set_runnable_since_ns(now_ns);
    preempt_deadline_ns_ = std::min(preempt_deadline_ns_, now_ns + q.budget_ns());
  }
}

void Executor::AddTimer(uint64_t deadline_ns, std::coroutine_handle<> waiter) {
  assert(current_executor == this);
  timers_.Add(deadline_ns, waiter, current_queue_);
}

void Executor::FireTimers(uint64_t now_ns) {
  for (uint32_t i = 0; i < kTimersPerIterationMax && !timers_.empty(); ++i) {
    if (timers_.next_deadline_ns() > now_ns) return;
    const Timer timer = timers_.PopEarliest();
    Schedule(timer.waiter, timer.queue);
  }
}

// ---- I/O.

void Executor::Enqueue(io::IoRequest* req, std::coroutine_handle<> waiter) {
  assert(current_executor == this);
  assert(req != nullptr && waiter);
  req->io_class = current_queue_;
  req->waiter = waiter;
  dispatcher_->Enqueue(req, NowNs());
}

void Executor::ReapIo(int64_t timeout_ns) {
  Status status = backend_->Poll(timeout_ns);
  if (!status.ok()) {
    // The ring itself is broken: nothing can complete any more.
    std::fprintf(stderr, "dmalog: executor %u stops: %s\n", shard_, status.ToString().c_str());
    stop_requested_.store(true);
    return;
  }
  // Every completion was in flight: that bounds the loop.
  const uint32_t reap_max = dispatcher_->in_flight();
  const uint64_t now_ns = NowNs();
  for (uint32_t i = 0; i < reap_max; ++i) {
    io::IoRequest* req = dispatcher_->PopCompleted(now_ns);
    if (req == nullptr) break;
    // Resumed later, when its queue runs: never from inside the reaping.
    Schedule(req->waiter, req->io_class);
  }
  dispatcher_->Dispatch();
}

Status Executor::InitBufferPool() {
  Result<std::unique_ptr<io::BufferPool>> pool =
      io::BufferPool::Create(options_.buffer_count, options_.buffer_size_bytes);
  if (!pool.ok()) return pool.status().WithContext("start executor " + std::to_string(shard_));
  buffer_pool_ = std::move(pool).value();
  // Unregistered buffers still work (index -1); keep the reason for stats.
  Status registered = buffer_pool_->RegisterWith(*backend_);
  if (!registered.ok()) buffer_registration_error_ = registered.ToString();
  return Status::OK();
}

void Executor::DestroyBufferPool() {
  if (buffer_pool_ == nullptr) return;
  if (buffer_pool_->free_count() == buffer_pool_->count() && buffer_pool_->waiters_count() == 0) {
    buffer_pool_.reset();
    return;
  }
  // Tasks destroyed at stop held buffers or waited for one, and BufferPool
  // requires all buffers back. Keep the pool reachable instead of freeing it.
  std::fprintf(stderr,
               "dmalog: executor %u stopped with %u of %u buffers lent and %u waiters; "
               "the buffer pool is not freed\n",
               shard_, buffer_pool_->count() - buffer_pool_->free_count(), buffer_pool_->count(),
               buffer_pool_->waiters_count());
  static std::mutex graveyard_mu;
  static std::vector<std::unique_ptr<io::BufferPool>>* graveyard =
      new std::vector<std::unique_ptr<io::BufferPool>>();
  std::lock_guard<std::mutex> lock(graveyard_mu);
  graveyard->push_back(std::move(buffer_pool_));
}

io::BufferPool& Executor::buffer_pool() noexcept {
  assert(buffer_pool_ != nullptr);
  return *buffer_pool_;
}

// ---- The loop.

void Executor::Loop() {
  // Runs until Stop(): the one loop without a fixed bound, by design.
  while (!stop_requested_.load(std::memory_order_acquire)) {
    ++loop_iterations_;
    const uint64_t messages_before = messages_run_;
    RunMessages();
    // A message served at once (a get answered from memory) is work too:
    // the idle poll's window counts from it.
    if (messages_run_ != messages_before) last_work_ns_ = NowNs();
    FlushPendingSends();
    FireTimers(NowNs());
    if (dispatcher_->in_flight() > 0) ReapIo(0);
    if (AnyRunnable()) {
      RunSlice();
      last_work_ns_ = NowNs();
    } else if (!IdlePoll()) {
      Sleep();
    }
  }
}

bool Executor::AnyRunnable() const noexcept {
  for (uint32_t i = 0; i < queue_count_; ++i) {
    if (!queues_[i]->empty()) return true;
  }
  return false;
}

TaskQueue* Executor::Pick(uint64_t now_ns) noexcept {
  TaskQueue* best = nullptr;
  TaskQueue* overdue = nullptr;
  for (uint32_t i = 0; i < queue_count_; ++i) {
    TaskQueue* q = queues_[i].get();
    if (q->empty()) continue;
    const uint64_t since_ns = q->runnable_since_ns();
    if (q->latency_matters() && since_ns != 0 && now_ns >= since_ns + q->budget_ns()) {
      if (overdue == nullptr || since_ns < overdue->runnable_since_ns()) overdue = q;
    }
    if (best == nullptr || q->vruntime() < best->vruntime() ||
        (q->vruntime() == best->vruntime() && q->latency_matters() && !best->latency_matters())) {
      best = q;
    }
  }
  return overdue != nullptr ? overdue : best;
}

uint64_t Executor::MinRunnableVruntime() const noexcept {
  uint64_t min_vruntime = UINT64_MAX;
  for (uint32_t i = 0; i < queue_count_; ++i) {
    if (!queues_[i]->empty()) min_vruntime = std::min(min_vruntime, queues_[i]->vruntime());
  }
  return min_vruntime == UINT64_MAX ? min_vruntime_ : min_vruntime;
}

void Executor::RunSlice() {
  const uint64_t start_ns = NowNs();
  TaskQueue* q = Pick(start_ns);
  assert(q != nullptr);
  running_ = q;
  current_queue_ = q->id();
  q->set_runnable_since_ns(0);
  min_vruntime_ = std::max(min_vruntime_, MinRunnableVruntime());
  // Preempt at the quota, or earlier when a waiting latency queue's budget
  // runs out.
  uint64_t deadline_ns = start_ns + static_cast<uint64_t>(options_.task_quota.count());
  for (uint32_t i = 0; i < queue_count_; ++i) {
    const TaskQueue& other = *queues_[i];
    if (&other == q || other.empty() || other.runnable_since_ns() == 0) continue;
    deadline_ns = std::min(deadline_ns, other.runnable_since_ns() + other.budget_ns());
  }
  preempt_deadline_ns_ = deadline_ns;
  uint64_t end_ns = start_ns;
  uint32_t tasks = 0;
  while (tasks < kTasksPerSliceMax && !q->empty()) {
    q->Pop().resume();
    ++tasks;
    end_ns = NowNs();
    if (end_ns >= preempt_deadline_ns_) break;
  }
  q->Charge(end_ns - start_ns, tasks);
  if (q->latency_matters() && !q->empty()) q->set_runnable_since_ns(end_ns);
  running_ = nullptr;
  current_queue_ = kDefaultQueue;
  preempt_deadline_ns_ = 0;
}

// ---- Shutdown.

void Executor::DrainIo() {
  const uint64_t give_up_ns = NowNs() + static_cast<uint64_t>(kStopDrainNs);
  while (dispatcher_->in_flight() > 0 && NowNs() < give_up_ns) {
    Status status = backend_->Poll(1'000'000);
    if (!status.ok()) break;
    for (uint32_t i = 0, n = dispatcher_->in_flight(); i < n; ++i) {
      if (dispatcher_->PopCompleted(NowNs()) == nullptr) break;
    }
  }
}

void Executor::Shutdown() {
  // A drop below may run a callback that posts again: it must meet the
  // closed inbox, not the FIFO being dropped.
  shutting_down_ = true;
  // Refuse new outside messages; what is queued is dropped, not run.
  for (const Message& msg : inbox_.Close()) msg.drop(msg.arg);
  // Popped one at a time: a drop may queue another self-message (TrySend).
  while (!self_messages_.empty()) {
    const Message msg = self_messages_.front();
    self_messages_.pop_front();
    msg.drop(msg.arg);
  }
  // Pending sends live in frames about to be destroyed: their awaitables
  // drop the unsent messages.
  std::fill(pending_head_.begin(), pending_head_.end(), nullptr);
  std::fill(pending_tail_.begin(), pending_tail_.end(), nullptr);
  pending_count_ = 0;
  dispatcher_->DropWaiting();
  DrainIo();
  for (uint32_t i = 0; i < queue_count_; ++i) queues_[i]->Clear();
  timers_.Clear();
  if (dispatcher_->in_flight() > 0) {
    // The kernel may still write into these frames: leak rather than corrupt.
    std::fprintf(stderr,
                 "dmalog: executor %u: %u I/O requests still in flight at stop; "
                 "leaking %llu suspended tasks\n",
                 shard_, dispatcher_->in_flight(), static_cast<unsigned long long>(roots_live_));
    roots_ = nullptr;
    return;
  }
  // Destroying a root destroys the whole chain of tasks it awaits.
  for (uint64_t i = 0, n = roots_live_; i < n && roots_ != nullptr; ++i) {
    std::coroutine_handle<RootPromise>::from_promise(*roots_).destroy();
  }
  assert(roots_ == nullptr && roots_live_ == 0);
}

// ---- Stats.

ExecutorStats Executor::Snapshot() const {
  assert(current_executor == this);
  ExecutorStats stats;
  stats.shard = shard_;
  stats.backend_kind = backend_->kind();
  stats.backend_description = backend_->Describe();
  stats.fallback_reason = fallback_reason_;
  stats.buffer_registration_error = buffer_registration_error_;
  stats.buffers_free = buffer_pool_->free_count();
  stats.buffer_waits = buffer_pool_->waits_count();
  stats.loop_iterations = loop_iterations_;
  stats.sleeps = sleeps_;
  stats.messages_run = messages_run_;
  stats.roots_live = roots_live_;
  for (uint32_t i = 0; i < queue_count_; ++i) {
    stats.queues.push_back(queues_[i]->Stats());
    stats.io_classes.push_back(dispatcher_->Stats(i));
  }
  return stats;
}

}  // namespace dmalog::sched

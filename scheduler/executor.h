// Executor: one thread per core that owns an io::Backend (its ring), an
// io::BufferPool registered with it, task queues, timers and cross-shard
// inboxes, and runs coroutines (Task<T>) on them. It implements io::Reactor.
//
// Executors are created and started by ExecutorGroup (executor_group.h). All
// methods are executor-thread only unless marked "any thread".
//
// The loop (see "The executor" in docs/design.md): receive messages, fire
// timers, reap I/O completions into the task queues, run one slice of the
// queue the policy picks; when nothing is runnable, poll the inboxes for
// ExecutorOptions::idle_poll (none while I/O is in flight), then sleep in
// Backend::Poll.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/status.h"
#include "io/backend.h"
#include "io/reactor.h"
#include "scheduler/await_slots.h"
#include "scheduler/io_dispatcher.h"
#include "scheduler/message.h"
#include "scheduler/task.h"
#include "scheduler/task_queue.h"
#include "scheduler/timer_heap.h"

namespace dmalog::sched {

class ExecutorGroup;

// Named limits of the loop.
inline constexpr uint32_t kTasksPerSliceMax = 1u << 16;
inline constexpr uint32_t kMessagesPerSourceMax = 256;  // Per loop iteration.
inline constexpr uint32_t kTimersPerIterationMax = 4096;
// Sleep granularity while sends wait for room in a full peer ring.
inline constexpr int64_t kSendRetryNs = 50'000;
// Shutdown waits at most this long for in-flight I/O (kernel owns buffers).
inline constexpr int64_t kStopDrainNs = 10'000'000'000;

// BackendOptions with a modest ring (tests create many executors).
inline io::BackendOptions DefaultExecutorBackendOptions() {
  io::BackendOptions options;
  options.ring_depth = 64;
  return options;
}

// A spin-wait hint to the CPU (PAUSE on x86): cheaper for the sibling
// hyperthread and for the hypervisor than a bare loop.
inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Every spin-wait yields the CPU once every this many polls (a few µs).
// Yielding costs a system call when nothing else is ready and keeps the
// vCPU awake, which is what a spin is for; a pure spin on a kernel that
// packs threads onto one vCPU can hold off the very thread it waits for.
// Measured on 2 vCPUs (2026-12-06, dmalog_bench --benchmarks=fillrandom
// --sync=1 --threads=1 --num=3000, 5 alternating rounds, P50 of a lone
// durable put with the caller's spin): a pure spin 354-387 us, no spin
// 108-138 us, this 102-127 us (docs/benchmarks.md, session 12).
inline constexpr uint32_t kSpinPollsPerYield = 64;

// Round `polls` (counted from 1) of a spin-wait: a CpuRelax, or on every
// kSpinPollsPerYield-th round a yield of the CPU.
inline void SpinPause(uint32_t polls) noexcept {
  if (polls % kSpinPollsPerYield == 0) {
    std::this_thread::yield();
  } else {
    CpuRelax();
  }
}

struct ExecutorOptions {
  // Pins the thread to this CPU; -1 leaves it unpinned. ExecutorGroup's
  // placement overrides it.
  int pin_to_cpu = -1;
  io::BackendOptions backend = DefaultExecutorBackendOptions();
  // The buffer pool: modest defaults, tests create many executors.
  uint32_t buffer_count = 16;
  uint32_t buffer_size_bytes = 128u << 10;
  // A queue runs at most this long before the executor picks again.
  std::chrono::nanoseconds task_quota = std::chrono::microseconds(500);
  // Before sleeping with no I/O in flight, poll the inboxes for this long
  // after the last work (as Seastar's --idle-poll-time-us): a message that
  // arrives meanwhile costs its sender no wake-up syscall and the executor
  // no wake-up (tens of microseconds on a VM). Burns the CPU while polling,
  // yielding it every kSpinPollsPerYield polls; zero sleeps at once.
  std::chrono::nanoseconds idle_poll = std::chrono::nanoseconds(0);
  // Device saturation: requests in flight (0 = the ring depth) and bytes.
  uint32_t device_in_flight_max = 0;
  uint64_t device_in_flight_bytes_max = 32ull << 20;
  // Queue kDefaultQueue.
  QueueOptions default_queue{};
};

struct ExecutorStats {
  uint32_t shard = 0;
  io::BackendKind backend_kind = io::BackendKind::kUring;
  std::string backend_description;
  std::string fallback_reason;            // Empty when io_uring is in use.
  std::string buffer_registration_error;  // Empty when buffers are registered.
  uint32_t buffers_free = 0;
  uint64_t buffer_waits = 0;  // Acquire() calls that had to wait.
  uint64_t loop_iterations = 0;
  uint64_t sleeps = 0;
  uint64_t messages_run = 0;
  uint64_t roots_live = 0;
  std::vector<QueueStats> queues;        // Indexed by QueueId.
  std::vector<IoClassStats> io_classes;  // Indexed by QueueId.
};

// A message waiting for room in a full ring (lives in an awaitable's frame).
struct PendingSend {
  uint32_t target = 0;
  Message msg;
  // Resumed (in `queue`) once sent; may be null.
  std::coroutine_handle<> waiter;
  QueueId queue = kDefaultQueue;
  bool sent = false;
  PendingSend* next = nullptr;
};

class Executor final : public io::Reactor {
 public:
  // `group` is not owned and outlives the executor.
  Executor(uint32_t shard, ExecutorGroup* group, ExecutorOptions options);
  ~Executor() override;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // The executor running the calling thread, or null.
  static Executor* Current() noexcept;

  uint32_t shard() const noexcept { return shard_; }        // Any thread.
  ExecutorGroup* group() const noexcept { return group_; }  // Any thread.

  // Adds a task queue (InvalidArgument for bad options, Busy when
  // kQueuesMax queues exist).
  Result<QueueId> CreateQueue(const QueueOptions& options);
  bool HasQueue(QueueId queue) const noexcept;
  // Runs `task` detached in `queue`; the executor owns its frame, frees it
  // at completion, and destroys it if it is still suspended at Stop.
  void Spawn(QueueId queue, Task<void> task);

  // Preemption point check: true when the running task should yield.
  bool PreemptDue() const noexcept { return NowNs() >= preempt_deadline_ns_; }
  // Resumes `waiter` in the current queue at `deadline_ns` (steady clock).
  void AddTimer(uint64_t deadline_ns, std::coroutine_handle<> waiter);
  // Sends `send->msg` to shard `send->target`, now if the ring has room,
  // else when it does; resumes send->waiter (if set) once sent. `send` is
  // borrowed until sent (or until the executor stops).
  void Send(PendingSend* send);
  // Sends now or returns false (the ring is full). Ownership of msg.arg
  // passes on success only.
  [[nodiscard]] bool TrySend(uint32_t target, const Message& msg);

  ExecutorStats Snapshot() const;
  // True while a message this executor's thread sent or posted to itself
  // has not run yet. Own thread only. A caller that would otherwise act on
  // its own shard at once checks it to keep its order behind such messages.
  bool has_self_messages() const noexcept { return !self_messages_.empty(); }
  const ExecutorOptions& options() const noexcept { return options_; }
  // Own thread only. While on, a message posted as deferrable does not wake
  // this executor: the caller promises that the executor is about to be
  // woken anyway (its I/O in flight completes) and that the message could
  // not be served earlier. Sleep() re-checks the inboxes after the flag is
  // turned off, so nothing is stranded.
  void DeferWakes(bool on) noexcept { defer_wakes_.store(on, std::memory_order_relaxed); }
  // Any thread; a snapshot that may be stale at once (tests use it to know
  // that the executor has gone to sleep).
  bool asleep() const noexcept { return sleeping_.load(std::memory_order_relaxed); }

  // io::Reactor.
  void Enqueue(io::IoRequest* req, std::coroutine_handle<> waiter) override;
  uint32_t current_queue() const noexcept override { return current_queue_; }
  void Schedule(std::coroutine_handle<> handle, uint32_t queue) override;
  io::BufferPool& buffer_pool() noexcept override;
  // The rendezvous slots of CallbackAwaitable (await_slots.h).
  AwaitSlots& await_slots() noexcept { return await_slots_; }

  static uint64_t NowNs() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

 private:
  friend class ExecutorGroup;
  struct RootPromise;
  struct RootTask;
  static RootTask RunRoot(Executor* executor, Task<void> task);

  // ---- Called by ExecutorGroup.
  void StartThread();
  // Waits until the thread has set up (or failed to set up) its backend.
  Status AwaitInit();
  void Go(bool run_loop);
  void RequestStop() noexcept;  // Any thread.
  void Join();
  // Any thread: queues a message in the inbox; on this executor's own
  // thread, in its self-message FIFO (no lock, no wake-up).
  [[nodiscard]] bool PushFromOutside(const Message& msg, bool deferrable = false);
  // Any thread. `deferrable`: skip the wake-up while DeferWakes(true) holds.
  void WakeIfSleeping(bool deferrable = false) noexcept;

  // ---- The thread.
  void ThreadMain();
  Status Init();
  Status InitBufferPool();
  void DestroyBufferPool();
  void Loop();
  void RunMessages();
  void FlushPendingSends();
  void FireTimers(uint64_t now_ns);
  void ReapIo(int64_t timeout_ns);
  bool AnyRunnable() const noexcept;
  bool HasIncoming() const;
  void Sleep();
  // Polls for up to options_.idle_poll since the last work; true when work came.
  bool IdlePoll();
  TaskQueue* Pick(uint64_t now_ns) noexcept;
  uint64_t MinRunnableVruntime() const noexcept;
  void RunSlice();
  void Shutdown();
  void DrainIo();

  const uint32_t shard_;
  ExecutorGroup* const group_;
  const ExecutorOptions options_;
  std::thread thread_;

  // Set up on the thread by Init(); read by other threads only after Go().
  std::unique_ptr<io::Backend> backend_;
  std::string fallback_reason_;
  std::string buffer_registration_error_;  // Empty when registered.
  std::unique_ptr<io::BufferPool> buffer_pool_;
  std::unique_ptr<IoDispatcher> dispatcher_;

  // Start-up handshake (guarded by start_mu_).
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  bool init_done_ = false;
  Status init_status_;
  bool go_ = false;
  bool run_loop_ = false;
  bool backend_alive_ = false;  // Guarded by start_mu_ (see RequestStop).

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<uint64_t> wake_sync_{0};    // See WakeIfSleeping().
  std::atomic<bool> defer_wakes_{false};  // See DeferWakes().
  MessageInbox inbox_;

  std::array<std::unique_ptr<TaskQueue>, kQueuesMax> queues_{};
  uint32_t queue_count_ = 0;
  TaskQueue* running_ = nullptr;
  QueueId current_queue_ = kDefaultQueue;
  // Monotonic: the least vruntime of runnable queues at the last pick; the
  // floor for queues leaving idle.
  uint64_t min_vruntime_ = 0;
  uint64_t preempt_deadline_ns_ = 0;
  TimerHeap timers_;
  RootPromise* roots_ = nullptr;  // Intrusive list of live root tasks.
  uint64_t roots_live_ = 0;

  // Messages this executor's own thread sent or posted to itself.
  std::deque<Message> self_messages_;
  AwaitSlots await_slots_;      // Outlives the callbacks: see await_slots.h.
  bool shutting_down_ = false;  // Shutdown() has begun: self-posts go to the closed inbox.
  std::deque<Message> inbox_batch_;
  // Per target shard: sends waiting for room (FIFO, intrusive).
  std::vector<PendingSend*> pending_head_;
  std::vector<PendingSend*> pending_tail_;
  uint32_t pending_count_ = 0;

  uint64_t loop_iterations_ = 0;
  uint64_t sleeps_ = 0;
  uint64_t last_work_ns_ = 0;  // When a slice last ran (IdlePoll's window).
  uint64_t messages_run_ = 0;
};

// ---- Awaitables for tasks running on an executor.

// Preemption point for long work: suspends (and requeues the task) only when
// the executor says preemption is due; otherwise costs one clock read.
struct [[nodiscard]] MaybeYieldAwaitable {
  bool await_ready() const noexcept { return !Executor::Current()->PreemptDue(); }
  void await_suspend(std::coroutine_handle<> h) const {
    Executor* ex = Executor::Current();
    ex->Schedule(h, ex->current_queue());
  }
  void await_resume() const noexcept {}
};
inline MaybeYieldAwaitable maybe_yield() noexcept { return {}; }

// Always requeues the task at the back of its queue.
struct [[nodiscard]] YieldAwaitable {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    Executor* ex = Executor::Current();
    ex->Schedule(h, ex->current_queue());
  }
  void await_resume() const noexcept {}
};
inline YieldAwaitable yield() noexcept { return {}; }

// Resumes the task (in its queue) once `duration` has passed.
struct [[nodiscard]] SleepAwaitable {
  uint64_t deadline_ns;
  bool await_ready() const noexcept { return Executor::NowNs() >= deadline_ns; }
  void await_suspend(std::coroutine_handle<> h) const {
    Executor::Current()->AddTimer(deadline_ns, h);
  }
  void await_resume() const noexcept {}
};
inline SleepAwaitable sleep_for(std::chrono::nanoseconds duration) noexcept {
  const int64_t ns = duration.count() > 0 ? duration.count() : 0;
  return SleepAwaitable{Executor::NowNs() + static_cast<uint64_t>(ns)};
}

// Sends a message to another shard, waiting (suspended) while its ring is
// full. The awaitable owns msg.arg until it is sent (drops it otherwise).
class [[nodiscard]] SendAwaitable {
 public:
  SendAwaitable(uint32_t target, Message msg) { send_.target = target, send_.msg = msg; }
  SendAwaitable(const SendAwaitable&) = delete;
  SendAwaitable& operator=(const SendAwaitable&) = delete;
  ~SendAwaitable() {
    if (!send_.sent && send_.msg.drop != nullptr) send_.msg.drop(send_.msg.arg);
  }
  bool await_ready() noexcept {
    return Executor::Current()->TrySend(send_.target, send_.msg) && (send_.sent = true);
  }
  void await_suspend(std::coroutine_handle<> h) {
    Executor* ex = Executor::Current();
    send_.waiter = h;
    send_.queue = ex->current_queue();
    ex->Send(&send_);
  }
  void await_resume() const noexcept {}

 private:
  PendingSend send_;
};

}  // namespace dmalog::sched

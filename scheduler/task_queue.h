// TaskQueue: one scheduling group of an executor (Seastar's scheduling group,
// Glommio's task queue). A queue has CPU shares, a latency class, and is also
// an I/O class with its own in-flight limits (see io_dispatcher.h).
//
// The executor runs the runnable queue with the least virtual runtime
// (vruntime = runtime_ns * kShareScale / shares), CFS-style. A queue that is
// Latency::Matters{budget} is picked at the latest `budget` after it became
// runnable, preempting the running queue at its next preemption point.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <string>
#include <variant>

#include "dmalog/status.h"

namespace dmalog::sched {

using QueueId = uint32_t;
// Every executor has this queue (shares kSharesDefault, Latency::NotImportant).
inline constexpr QueueId kDefaultQueue = 0;
// Queues per executor, including the default queue.
inline constexpr uint32_t kQueuesMax = 32;

inline constexpr uint32_t kSharesMin = 1;
inline constexpr uint32_t kSharesMax = 1000;
inline constexpr uint32_t kSharesDefault = 100;
// vruntime = runtime_ns * kShareScale / shares.
inline constexpr uint64_t kShareScale = 1000;
static_assert(kSharesMin <= kSharesDefault && kSharesDefault <= kSharesMax);
static_assert(kShareScale >= kSharesMax, "a share-1000 queue still accrues vruntime");

// Runnable tasks one queue may hold (an invariant, asserted).
inline constexpr uint32_t kRunnableTasksMax = 1u << 20;

struct Latency {
  struct Matters {
    std::chrono::nanoseconds budget;
  };
  struct NotImportant {};
  using Class = std::variant<NotImportant, Matters>;
};

struct QueueOptions {
  std::string name = "default";
  uint32_t shares = kSharesDefault;
  Latency::Class latency = Latency::NotImportant{};
  // I/O class limits: requests and bytes in flight in the device.
  uint32_t io_in_flight_max = 64;
  uint64_t io_in_flight_bytes_max = 8ull << 20;
};

// InvalidArgument when shares are outside [kSharesMin, kSharesMax], a latency
// budget is not positive, or an I/O limit is zero.
Status ValidateQueueOptions(const QueueOptions& options);

struct QueueStats {
  std::string name;
  uint32_t shares = 0;
  bool latency_matters = false;
  uint64_t runtime_ns = 0;
  uint64_t tasks_run = 0;
  uint32_t runnable_tasks = 0;  // Queue depth at snapshot time.
  uint64_t vruntime = 0;
};

class TaskQueue {
 public:
  TaskQueue(QueueId id, QueueOptions options);

  QueueId id() const noexcept { return id_; }
  const QueueOptions& options() const noexcept { return options_; }
  bool latency_matters() const noexcept { return budget_ns_ > 0; }
  uint64_t budget_ns() const noexcept { return budget_ns_; }

  bool empty() const noexcept { return runnable_.empty(); }
  uint32_t depth() const noexcept { return static_cast<uint32_t>(runnable_.size()); }
  // Returns true when the queue went from empty to runnable.
  bool Push(std::coroutine_handle<> handle);
  std::coroutine_handle<> Pop() noexcept;
  // Forgets every runnable handle without resuming it (shutdown).
  void Clear() noexcept { runnable_.clear(); }

  uint64_t vruntime() const noexcept { return vruntime_; }
  // CFS wake-up rule: a queue returning from idle cannot keep old credit.
  void CatchUp(uint64_t min_vruntime) noexcept;
  // Charges a slice of `runtime_ns` that ran `tasks` tasks.
  void Charge(uint64_t runtime_ns, uint64_t tasks) noexcept;

  // For latency queues: when the queue last became runnable (0 = not waiting).
  uint64_t runnable_since_ns() const noexcept { return runnable_since_ns_; }
  void set_runnable_since_ns(uint64_t ns) noexcept { runnable_since_ns_ = ns; }

  QueueStats Stats() const;

 private:
  const QueueId id_;
  const QueueOptions options_;
  const uint64_t budget_ns_;  // 0 for Latency::NotImportant.
  std::deque<std::coroutine_handle<>> runnable_;
  uint64_t vruntime_ = 0;
  uint64_t runtime_ns_ = 0;
  uint64_t tasks_run_ = 0;
  uint64_t runnable_since_ns_ = 0;
};

}  // namespace dmalog::sched

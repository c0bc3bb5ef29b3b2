#include "scheduler/task_queue.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace dmalog::sched {
namespace {

uint64_t BudgetNs(const Latency::Class& latency) {
  if (const auto* matters = std::get_if<Latency::Matters>(&latency)) {
    return static_cast<uint64_t>(std::max<int64_t>(matters->budget.count(), 1));
  }
  return 0;
}

}  // namespace

Status ValidateQueueOptions(const QueueOptions& options) {
  if (options.shares < kSharesMin || options.shares > kSharesMax) {
    return Status::InvalidArgument("create task queue '" + options.name + "': shares " +
                                   std::to_string(options.shares) + " outside [" +
                                   std::to_string(kSharesMin) + ", " + std::to_string(kSharesMax) +
                                   "]; pick a value in range");
  }
  if (const auto* matters = std::get_if<Latency::Matters>(&options.latency)) {
    if (matters->budget.count() <= 0) {
      return Status::InvalidArgument("create task queue '" + options.name +
                                     "': Latency::Matters budget must be positive");
    }
  }
  if (options.io_in_flight_max == 0 || options.io_in_flight_bytes_max == 0) {
    return Status::InvalidArgument("create task queue '" + options.name +
                                   "': I/O in-flight limits must be positive");
  }
  return Status::OK();
}

TaskQueue::TaskQueue(QueueId id, QueueOptions options)
    : id_(id), options_(std::move(options)), budget_ns_(BudgetNs(options_.latency)) {
  assert(options_.shares >= kSharesMin && options_.shares <= kSharesMax);
}

bool TaskQueue::Push(std::coroutine_handle<> handle) {
  assert(handle);
  assert(runnable_.size() < kRunnableTasksMax && "runnable queue limit");
  const bool was_empty = runnable_.empty();
  runnable_.push_back(handle);
  return was_empty;
}

std::coroutine_handle<> TaskQueue::Pop() noexcept {
  assert(!runnable_.empty());
  std::coroutine_handle<> handle = runnable_.front();
  runnable_.pop_front();
  return handle;
}

void TaskQueue::CatchUp(uint64_t min_vruntime) noexcept {
  vruntime_ = std::max(vruntime_, min_vruntime);
}

void TaskQueue::Charge(uint64_t runtime_ns, uint64_t tasks) noexcept {
  runtime_ns_ += runtime_ns;
  tasks_run_ += tasks;
  vruntime_ += runtime_ns * kShareScale / options_.shares;
}

QueueStats TaskQueue::Stats() const {
  QueueStats stats;
  stats.name = options_.name;
  stats.shares = options_.shares;
  stats.latency_matters = latency_matters();
  stats.runtime_ns = runtime_ns_;
  stats.tasks_run = tasks_run_;
  stats.runnable_tasks = depth();
  stats.vruntime = vruntime_;
  return stats;
}

}  // namespace dmalog::sched

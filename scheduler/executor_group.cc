#include "scheduler/executor_group.h"

#include <cassert>
#include <string>
#include <utility>

namespace dmalog::sched {

ExecutorGroup::ExecutorGroup(uint32_t shard_count)
    : shard_count_(shard_count),
      rings_(std::make_unique<MessageRing[]>(static_cast<size_t>(shard_count) * shard_count)) {}

Result<std::unique_ptr<ExecutorGroup>> ExecutorGroup::Start(const GroupOptions& options) {
  if (options.shards == 0 || options.shards > kShardsMax) {
    return Status::InvalidArgument("start executor group: " + std::to_string(options.shards) +
                                   " shards; use 1.." + std::to_string(kShardsMax));
  }
  if (!options.cpus.empty() && options.cpus.size() < options.shards) {
    return Status::InvalidArgument(
        "start executor group: placement names " + std::to_string(options.cpus.size()) +
        " CPUs for " + std::to_string(options.shards) + " shards; name one CPU per shard");
  }
  std::unique_ptr<ExecutorGroup> group(new ExecutorGroup(options.shards));
  for (uint32_t i = 0; i < options.shards; ++i) {
    ExecutorOptions executor_options = options.executor;
    if (!options.cpus.empty()) executor_options.pin_to_cpu = options.cpus[i];
    group->executors_.push_back(
        std::make_unique<Executor>(i, group.get(), std::move(executor_options)));
  }
  for (auto& executor : group->executors_) executor->StartThread();
  Status first_error;
  for (auto& executor : group->executors_) {
    Status status = executor->AwaitInit();
    if (!status.ok() && first_error.ok()) first_error = std::move(status);
  }
  const bool ok = first_error.ok();
  for (auto& executor : group->executors_) executor->Go(ok);
  if (!ok) {
    group->Stop();
    return first_error;
  }
  return group;
}

ExecutorGroup::~ExecutorGroup() { Stop(); }

void ExecutorGroup::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& executor : executors_) executor->RequestStop();
  for (auto& executor : executors_) executor->Join();
  // Undelivered messages: nobody will run them now.
  for (uint32_t from = 0; from < shard_count_; ++from) {
    for (uint32_t to = 0; to < shard_count_; ++to) {
      MessageRing& ring = Ring(from, to);
      for (uint32_t i = 0; i < MessageRing::capacity(); ++i) {
        std::optional<Message> msg = ring.TryPop();
        if (!msg) break;
        msg->drop(msg->arg);
      }
    }
  }
}

void ExecutorGroup::LoopDoneAndWait() {
  std::unique_lock<std::mutex> lock(done_mu_);
  ++loops_done_;
  assert(loops_done_ <= shard_count_);
  done_cv_.notify_all();
  done_cv_.wait(lock, [this] { return loops_done_ == shard_count_; });
}

bool ExecutorGroup::PushFromOutside(uint32_t shard, const Message& msg, bool deferrable) {
  assert(shard < shard_count_);
  return executors_[shard]->PushFromOutside(msg, deferrable);
}

Result<QueueId> ExecutorGroup::CreateQueue(uint32_t shard, const QueueOptions& options) {
  if (shard >= shard_count_) {
    return Status::InvalidArgument("create task queue '" + options.name + "': no shard " +
                                   std::to_string(shard));
  }
  auto create = [options]() -> Result<QueueId> {
    return Executor::Current()->CreateQueue(options);
  };
  return submit_to(shard, std::move(create)).get();
}

Result<ExecutorStats> ExecutorGroup::Stats(uint32_t shard) {
  if (shard >= shard_count_) {
    return Status::InvalidArgument("executor stats: no shard " + std::to_string(shard));
  }
  return submit_to(shard, [] { return Executor::Current()->Snapshot(); }).get();
}

}  // namespace dmalog::sched

// FanOut: runs one task on each of several shards and hands their results,
// in shard order, to one callback. The asynchronous forms of the calls that
// span shards (Scan, Sync, Stats) and of Tail are built on it, and the
// blocking and coroutine forms on those.
//
// Each part is posted to its shard's inbox, so it takes effect after every
// request the calling thread posted to that shard before (engine.h's
// per-thread order). `done` runs on the executor thread of the part that
// finished last, or inline if the group has stopped. The call's OpGate pass
// is held until `done` returns: Close waits for the whole operation, so no
// part can meet a destroyed shard.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "engine/op_gate.h"
#include "scheduler/executor_group.h"

namespace dmalog::engine {
namespace fan_out_detail {

// T is Status or Result<X>: a part that never ran yields Aborted.
template <typename T>
class State {
 public:
  using Done = std::function<void(std::vector<T>)>;
  State(size_t parts, Done done, OpGate::Pass pass)
      : results_(parts),
        remaining_(static_cast<uint32_t>(parts)),
        done_(std::move(done)),
        pass_(std::move(pass)) {
    assert(parts > 0);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  // A part dropped unrun (the group stopped) leaves the rest to the last
  // reference, wherever it goes.
  ~State() {
    if (!finished_) Finish();
  }  // pass_ is released after Finish: Close waits for `done`.

  // Records part `slot`'s result; the last part to arrive runs `done`.
  void Arrive(uint32_t slot, T result) {
    assert(slot < results_.size() && !results_[slot].has_value());
    results_[slot].emplace(std::move(result));
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish();
  }

 private:
  void Finish() {
    finished_ = true;
    std::vector<T> out;
    out.reserve(results_.size());
    for (std::optional<T>& r : results_) {
      out.push_back(r.has_value() ? std::move(*r)
                                  : T(Status::Aborted("the database closed before the call ran")));
    }
    std::exchange(done_, nullptr)(std::move(out));
  }

  std::vector<std::optional<T>> results_;  // Each slot written by its part only.
  std::atomic<uint32_t> remaining_;
  Done done_;
  bool finished_ = false;
  OpGate::Pass pass_;
};

// One part: runs on its shard. `make` (not a coroutine) builds the task
// there, so the shard is touched only on its own thread.
template <typename T, typename Make>
Task<void> Part(std::shared_ptr<State<T>> state, uint32_t slot, Make make) {
  T result = co_await make();
  state->Arrive(slot, std::move(result));
}

}  // namespace fan_out_detail

// Runs make(shard) -> (callable returning Task<T>) on each of `shards`, in
// `queues[shard]`, then done(results in the order of `shards`). `pass` must
// be a granted pass of the calling API call.
template <typename T, typename MakeFor>
void FanOut(sched::ExecutorGroup& group, const std::vector<uint32_t>& shards,
            const std::vector<sched::QueueId>& queues, MakeFor make_for,
            std::function<void(std::vector<T>)> done, OpGate::Pass pass) {
  assert(pass && !shards.empty());
  auto state =
      std::make_shared<fan_out_detail::State<T>>(shards.size(), std::move(done), std::move(pass));
  for (uint32_t slot = 0; slot < shards.size(); ++slot) {
    const uint32_t shard = shards[slot];
    // False when the group stopped: the part is gone, and its slot Aborted.
    static_cast<void>(group.PostTask(shard, fan_out_detail::Part<T>(state, slot, make_for(shard)),
                                     queues[shard]));
  }
}

}  // namespace dmalog::engine

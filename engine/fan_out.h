// FanOut: runs one task on each of several shards and hands their results,
// in shard order, to one callback. The asynchronous forms of the calls that
// span shards (Scan, Sync, Stats) and of Tail are built on it, and the
// blocking and coroutine forms on those.
//
// Each part is posted to its shard's inbox and served there as an
// OrderedRequest, so it takes effect after every request the calling thread
// posted to that shard before, and before every later one (engine.h's
// per-thread order): a scan's snapshot is taken at that point. `done` runs on the executor thread
// of the part that finished last, or inline if the group has stopped. The call's OpGate pass is
// held until `done` returns: Close waits for the whole operation, so no part can meet a destroyed
// shard.
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
#include "engine/requests.h"
#include "engine/shard.h"
#include "scheduler/executor_group.h"

namespace dmalog::engine {
namespace fan_out_detail {

// T is Status or Result<X>: a part that never ran yields Aborted.
template <typename T>
class State {
 public:
  // Gets the results and the call's pass: it may hand the pass on to a
  // next round, or let it go when it returns.
  using Done = std::function<void(std::vector<T>, OpGate::Pass)>;
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
  }  // `done` holds the pass while it runs: Close waits for it.

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
    std::exchange(done_, nullptr)(std::move(out), std::move(pass_));
  }

  std::vector<std::optional<T>> results_;  // Each slot written by its part only.
  std::atomic<uint32_t> remaining_;
  Done done_;
  bool finished_ = false;
  OpGate::Pass pass_;
};

// One part: an OrderedRequest, so that `make()` (a callable returning
// Task<T>) runs on its shard at the part's place in the shard's request
// order; the task it returns then runs in `queue`. Whatever must see the
// shard at that place (a snapshot, a ticket) must happen in `make()` itself
// or in a function it calls that is not a coroutine: a coroutine's body
// runs only when the task does, after later requests.
template <typename T, typename Make>
struct Part : OrderedRequest {
  std::shared_ptr<State<T>> state;
  uint32_t slot = 0;
  sched::QueueId queue = 0;
  Make make;

  Part(Shard* target, std::shared_ptr<State<T>> s, uint32_t i, sched::QueueId q, Make m)
      : state(std::move(s)), slot(i), queue(q), make(std::move(m)) {
    shard = target;
    start = &Start;
  }
  static void Start(OrderedRequest* request) {
    std::unique_ptr<Part> self(static_cast<Part*>(request));
    Task<T> rest = self->make();
    sched::Executor::Current()->Spawn(self->queue,
                                      Finish(std::move(self->state), self->slot, std::move(rest)));
  }
  static Task<void> Finish(std::shared_ptr<State<T>> state, uint32_t slot, Task<T> rest) {
    T result = co_await std::move(rest);
    state->Arrive(slot, std::move(result));
  }
  // Messages: run on the shard's executor; dropped if the group stopped
  // first (the slot is then Aborted).
  static void Run(sched::Executor& /*executor*/, void* arg, uint64_t /*tag*/) {
    auto* self = static_cast<Part*>(arg);
    self->shard->Submit(static_cast<OrderedRequest*>(self));
  }
  static void Drop(void* arg) { delete static_cast<Part*>(arg); }
};

}  // namespace fan_out_detail

// Runs make_for(i)() -> Task<T> on each shard i of `indexes` (shards[i],
// in queues[i]), then done(results in the order of `indexes`, pass).
// `pass` must be a granted pass of the calling API call.
template <typename T, typename MakeFor>
void FanOut(sched::ExecutorGroup& group, const std::vector<std::unique_ptr<Shard>>& shards,
            const std::vector<uint32_t>& indexes, const std::vector<sched::QueueId>& queues,
            MakeFor make_for, typename fan_out_detail::State<T>::Done done, OpGate::Pass pass) {
  assert(pass && !indexes.empty());
  auto state =
      std::make_shared<fan_out_detail::State<T>>(indexes.size(), std::move(done), std::move(pass));
  for (uint32_t slot = 0; slot < indexes.size(); ++slot) {
    const uint32_t i = indexes[slot];
    using PartT = fan_out_detail::Part<T, decltype(make_for(i))>;
    auto* part = new PartT(shards[i].get(), state, slot, queues[i], make_for(i));
    const sched::Message msg{&PartT::Run, &PartT::Drop, part, 0};
    // False when the group stopped: the part is gone, and its slot Aborted.
    if (!group.Post(i, msg)) msg.drop(msg.arg);
  }
}

}  // namespace dmalog::engine

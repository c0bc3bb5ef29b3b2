// OpGate: lets Engine::Close wait for the API calls already in progress on
// other threads, and turns later ones away, so that no call can reach a
// shard that Close has destroyed.
//
// Each call takes a Pass for as long as it uses the shards: a blocking call
// until it returns, an asynchronous one until its request is queued on the
// shard's executor (which then runs it before Close's own messages). Close
// calls CloseAndDrain first.
//
// The pass count and the closed flag form a Dekker pair: a call increments
// the count and then reads the flag, Close sets the flag and then reads the
// count (all sequentially consistent), so either the call sees the flag, or
// Close sees the call.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>

namespace dmalog::engine {

class OpGate {
 public:
  class [[nodiscard]] Pass {
   public:
    Pass(Pass&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (gate_ != nullptr) gate_->Leave();
    }
    // false: the engine is closed (or closing); the call must not go on.
    explicit operator bool() const noexcept { return gate_ != nullptr; }

   private:
    friend class OpGate;
    explicit Pass(OpGate* gate) noexcept : gate_(gate) {}
    OpGate* gate_;  // Null when refused.
  };

  OpGate() = default;
  OpGate(const OpGate&) = delete;
  OpGate& operator=(const OpGate&) = delete;
  ~OpGate() { assert(passes_.load() == 0 && "a call outlived the engine"); }

  Pass Enter() noexcept {
    passes_.fetch_add(1);
    if (closed_.load()) {
      Leave();
      return Pass(nullptr);
    }
    return Pass(this);
  }

  // Turns every later Enter away, then waits until each pass taken before
  // is gone. false (and no wait) when an earlier call closed the gate.
  bool CloseAndDrain() noexcept {
    if (closed_.exchange(true)) return false;
    // Bounded by the calls in progress when the flag was set: no new pass
    // is kept after it.
    for (uint64_t n = passes_.load(); n != 0; n = passes_.load()) passes_.wait(n);
    return true;
  }

  bool closed() const noexcept { return closed_.load(); }

 private:
  void Leave() noexcept {
    const uint64_t before = passes_.fetch_sub(1);
    assert(before > 0);
    // Only a closing engine has a waiter; an open one pays no wake-up.
    if (before == 1 && closed_.load()) passes_.notify_all();
  }

  std::atomic<uint64_t> passes_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace dmalog::engine

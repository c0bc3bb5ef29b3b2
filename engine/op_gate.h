// OpGate: lets Engine::Close wait for the API calls already in progress on
// other threads, and turns later ones away, so that no call can reach a
// shard that Close has destroyed.
//
// Each call takes a Pass for as long as it uses the shards: a blocking call
// until it returns, an asynchronous one until its request is queued on the
// shard's executor (in its inbox, which runs it before Close's own
// messages, or, when posted from that executor, in its queue of messages to
// itself, which Shard::Stop lets drain first; Stop then waits for what they
// started), a call that spans shards until its callback returns. Close calls
// CloseAndDrain first.
//
// One atomic word holds both the closed bit and the count of passes, so a
// call's increment and Close's setting of the bit are ordered by that word
// alone: either the call sees the bit, or Close sees the call. A pass gives
// the word back with a single decrement and touches the gate no more (the
// engine may be destroyed right after), which is why Close polls instead of
// waiting for a notification.
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <thread>

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
  ~OpGate() { assert(Passes(state_.load()) == 0 && "a call outlived the engine"); }

  Pass Enter() noexcept {
    // Checked first, so that calls refused in a loop do not hold the count
    // up while Close polls it.
    if (closed()) return Pass(nullptr);
    const uint64_t before = state_.fetch_add(1);
    assert(Passes(before) < kPassesMax);
    if ((before & kClosedBit) != 0) {
      Leave();
      return Pass(nullptr);
    }
    return Pass(this);
  }

  // Turns every later Enter away, then waits until each pass taken before
  // is gone. false (and no wait) when an earlier call closed the gate.
  [[nodiscard]] bool CloseAndDrain() noexcept {
    if ((state_.fetch_or(kClosedBit) & kClosedBit) != 0) return false;
    // Bounded by the calls in progress when the bit was set, plus Enters
    // that read the bit just before it was set (each backs out at once).
    for (uint32_t polls = 0; Passes(state_.load()) != 0; ++polls) {
      if (polls < kYieldPolls) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(kPollInterval);
      }
    }
    return true;
  }

  bool closed() const noexcept { return (state_.load() & kClosedBit) != 0; }

 private:
  static constexpr uint64_t kClosedBit = uint64_t{1} << 63;
  static constexpr uint64_t kPassesMax = kClosedBit - 1;
  // Close first yields this many times (calls in progress usually end
  // within microseconds), then sleeps between polls.
  static constexpr uint32_t kYieldPolls = 64;
  static constexpr std::chrono::microseconds kPollInterval{100};

  static uint64_t Passes(uint64_t state) noexcept { return state & ~kClosedBit; }

  void Leave() noexcept {
    const uint64_t before = state_.fetch_sub(1);
    assert(Passes(before) > 0);
    (void)before;  // Read only by the assertion.
  }

  std::atomic<uint64_t> state_{0};
};

}  // namespace dmalog::engine

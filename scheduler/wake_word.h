// WakeWord: one waiter on one thread, one signal from another, with a
// futex wake only when the waiter really sleeps.
//
// std::atomic::wait would do, but libstdc++ spins with sched_yield before it
// sleeps, which with many blocked callers on few CPUs steals the executors'
// time (4.6% of all CPU in readrandom with 16 threads), and notify_one goes
// through a shared table of waiters. Here the waiter spins only if told to,
// then announces that it sleeps; the signaller calls FUTEX_WAKE only then.
//
// Thread-safety: Wait from one thread, Signal once from any thread. The word
// must outlive both calls (Signal touches it until FUTEX_WAKE returns, so the
// waiter must not free it before Wait has returned).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cstdint>

namespace dmalog::sched {

class WakeWord {
 public:
  bool signalled() const noexcept { return state_.load(std::memory_order_acquire) == kSignalled; }

  // Returns once Signal was called.
  void Wait() noexcept {
    uint32_t expected = kPending;
    if (!state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) {
      assert(expected == kSignalled);
      return;
    }
    // Bounded by spurious wake-ups, which re-check the word.
    while (state_.load(std::memory_order_acquire) == kSleeping) {
      // EINTR and EAGAIN (the word changed first) both just re-check it.
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, kSleeping,
              nullptr, nullptr, 0);
    }
  }

  void Signal() noexcept {
    const uint32_t before = state_.exchange(kSignalled, std::memory_order_acq_rel);
    assert(before != kSignalled && "a WakeWord is signalled once");
    if (before == kSleeping) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr,
              nullptr, 0);
    }
  }

 private:
  static constexpr uint32_t kPending = 0;
  static constexpr uint32_t kSignalled = 1;
  static constexpr uint32_t kSleeping = 2;
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "the futex is the atomic");
  std::atomic<uint32_t> state_{kPending};
};

}  // namespace dmalog::sched

// SyncBackend: the fallback io::Backend for when io_uring cannot be set up
// (seccomp, kernel.io_uring_disabled, old kernels) or is disabled by options.
//
// Blocking syscalls (pread, pwrite, fdatasync, fsync, fallocate) run on a
// small pool of worker threads. The retry, short-transfer, split and errno
// rules are the ones of io_errors.h, shared with UringBackend. Workers push
// finished requests to a mutex-protected queue and signal an eventfd; Poll()
// waits on that eventfd, which Wake() also signals.
//
// Thread-safety: Wake() from any thread; every other method from the one
// thread that owns the backend (the executor's).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "io/backend.h"

namespace dmalog::io {

// Upper bound on BackendOptions::sync_workers.
inline constexpr uint32_t kSyncWorkersMax = 16;
// Upper bound on the submission queue (BackendOptions::ring_depth).
inline constexpr uint32_t kSyncQueueDepthMax = 4096;

class SyncBackend final : public Backend {
 public:
  // Starts options.sync_workers threads (1..kSyncWorkersMax); the queue holds
  // options.ring_depth requests (1..kSyncQueueDepthMax).
  static Result<std::unique_ptr<SyncBackend>> Create(const BackendOptions& options);
  // Finishes every submitted request, then joins the workers. Requests not
  // yet popped are abandoned to their owners (the executor drains first).
  ~SyncBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::kSync; }
  std::string Describe() const override;
  uint32_t capacity() const noexcept override { return queue_depth_ - in_flight_; }
  uint32_t in_flight() const noexcept override { return in_flight_; }
  void Submit(IoRequest* req) override;
  Status Poll(int64_t timeout_ns) override;
  IoRequest* PopCompleted() override;
  void Wake() override;
  // Plain pread/pwrite work on any memory: this only records how many
  // buffers exist, so that buf_index can be checked. Always OK.
  Status RegisterBuffers(std::span<const iovec> buffers) override;

 private:
  SyncBackend(int event_fd, uint32_t queue_depth);
  void WorkerLoop();
  void Signal() noexcept;
  void DrainEventFd() noexcept;

  const int event_fd_;
  const uint32_t queue_depth_;
  uint32_t workers_count_ = 0;
  uint32_t registered_buffers_ = 0;
  uint32_t in_flight_ = 0;  // Owner thread only.
  IoRequestQueue ready_;    // Owner thread only: completions for PopCompleted.

  std::mutex mu_;
  std::condition_variable work_cv_;
  IoRequestQueue pending_;    // Guarded by mu_.
  IoRequestQueue completed_;  // Guarded by mu_.
  bool stopping_ = false;     // Guarded by mu_.
  std::vector<std::thread> workers_;
};

// Runs `req` to completion with blocking syscalls on the calling thread,
// applying the io_errors.h rules. Used by SyncBackend's workers.
// `req` is borrowed for the duration of the call.
void ExecuteBlocking(IoRequest* req);

}  // namespace dmalog::io

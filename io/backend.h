// io::Backend: the seam between dmalog and the kernel's I/O interfaces.
//
// One backend per executor, used only from the executor's thread, except
// Wake(), which any thread may call. Implementations:
//   UringBackend  - io_uring (the normal case);
//   SyncBackend   - the fallback when io_uring cannot be set up: blocking
//                   syscalls on a few worker threads;
//   FaultBackend  - wraps another backend and injects faults (tests only).
//
// Life of a request: Submit(req) prepares it (for io_uring, takes the SQE);
// Poll() makes prepared requests visible to the kernel, reaps completions,
// performs io/'s retries, and queues finished requests; PopCompleted() hands
// them back one at a time. Nothing in io/ resumes a coroutine: the executor
// does that after PopCompleted, outside reaping.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "dmalog/status.h"
#include "io/io_request.h"

namespace dmalog::io {

enum class BackendKind : uint8_t { kUring, kSync, kFault };
const char* BackendKindName(BackendKind kind) noexcept;

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual BackendKind kind() const noexcept = 0;
  // One human-readable line: "io_uring depth=256 flags=SINGLE_ISSUER|DEFER_TASKRUN".
  virtual std::string Describe() const = 0;

  // Requests that may be submitted before the backend is saturated.
  virtual uint32_t capacity() const noexcept = 0;
  // Requests submitted and not yet returned by PopCompleted.
  virtual uint32_t in_flight() const noexcept = 0;

  // Takes `req` (see io_request.h for ownership). Never fails: an error is
  // reported as the request's status on completion. Requires capacity() > 0.
  virtual void Submit(IoRequest* req) = 0;

  // Pushes prepared requests to the kernel and reaps completions. Waits up to
  // `timeout_ns` for at least one completion or a Wake(): 0 never waits, a
  // negative value waits without limit. Returns an error only when the
  // backend itself is broken (e.g. io_uring_enter failed for a reason other
  // than EINTR/EAGAIN/EBUSY).
  virtual Status Poll(int64_t timeout_ns) = 0;

  // Hands prepared requests to the kernel now rather than at the next Poll,
  // for a request whose waiters are latency-bound (a group commit). Errors
  // surface in Poll. A backend that executes requests as they are submitted
  // has nothing to do.
  virtual void SubmitNow() {}

  // A finished request, or nullptr when none is waiting.
  virtual IoRequest* PopCompleted() = 0;

  // Thread-safe. Makes a Poll() that is waiting, or the next one, return.
  virtual void Wake() = 0;

  // Registers buffers for fixed reads and writes (buf_index refers to the
  // position in `buffers`). Unsupported is not fatal: callers then use -1.
  virtual Status RegisterBuffers(std::span<const iovec> buffers) = 0;
};

struct BackendOptions {
  uint32_t ring_depth = 256;
  // Use SyncBackend even where io_uring works (tests of the fallback).
  bool force_fallback = false;
  // Fail instead of falling back to SyncBackend.
  bool require_io_uring = false;
  // No warning line on stderr when falling back (the reason is still
  // returned in OpenedBackend::fallback_reason).
  bool quiet = false;
  // Worker threads of the SyncBackend.
  uint32_t sync_workers = 2;
  // Tests: wraps the opened backend (e.g. in a FaultBackend). Called on the
  // thread that opens the backend; must return a usable backend.
  std::function<std::unique_ptr<Backend>(std::unique_ptr<Backend>)> wrap;
};

struct OpenedBackend {
  std::unique_ptr<Backend> backend;
  // Empty when io_uring is in use; otherwise one line naming why the fallback
  // runs and what setting to change (already printed to stderr once).
  std::string fallback_reason;
};

// Opens io_uring, or the fallback with one warning line on stderr when
// io_uring cannot be set up (EPERM from seccomp or kernel.io_uring_disabled,
// ENOSYS on old kernels). Must be called on the thread that will use it.
Result<OpenedBackend> OpenBackend(const BackendOptions& options);

}  // namespace dmalog::io

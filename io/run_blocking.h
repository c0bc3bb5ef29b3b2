// RunBlocking: drives one request through a backend without an executor, for
// tests, tools and open-time/recovery code that runs before executors exist.
#pragma once

#include <cstdint>

#include "dmalog/status.h"
#include "io/backend.h"
#include "io/io_request.h"

namespace dmalog::io {

// Upper bound on the Poll() calls one RunBlocking may make (each waits for a
// completion; resubmissions and splits need one each).
inline constexpr uint32_t kRunBlockingPollsMax = 1u << 20;

// Submits `req`, polls `backend` until the request comes back, and returns a
// copy of its final status (req->status and req->done_bytes stay readable).
// `backend` and `req` are borrowed for the call. The backend must have no
// other request in flight, and capacity() > 0.
Status RunBlocking(Backend& backend, IoRequest* req);

}  // namespace dmalog::io

#include "io/run_blocking.h"

#include <cassert>
#include <string>

namespace dmalog::io {

Status RunBlocking(Backend& backend, IoRequest* req) {
  assert(backend.in_flight() == 0 && "RunBlocking needs the backend to itself");
  assert(backend.capacity() > 0);
  backend.Submit(req);
  for (uint32_t poll = 0; poll < kRunBlockingPollsMax; ++poll) {
    IoRequest* done = backend.PopCompleted();
    if (done != nullptr) {
      assert(done == req);
      return done->status;
    }
    DMALOG_RETURN_IF_ERROR(backend.Poll(-1));
  }
  return Status::IOError(std::string("RunBlocking: ") + IoOpName(req->op) + " " + req->path +
                         " did not complete after " + std::to_string(kRunBlockingPollsMax) +
                         " polls");
}

}  // namespace dmalog::io

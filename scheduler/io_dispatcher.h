// IoDispatcher: I/O classes, their in-flight limits, and share-based dispatch.
//
// Every task queue is also an I/O class (I/O priority follows the CPU group,
// as in Seastar). A class may have at most `in_flight_max` requests and
// `in_flight_bytes_max` bytes in the device; the device as a whole (the
// executor's ring) takes at most DeviceLimits. A request that does not fit
// waits in its class's FIFO. When requests wait, dispatch picks the class
// with the least virtual cost (dispatched cost * kShareScale / shares), cost
// being bytes plus kRequestBaseCostBytes, so a low-share background class
// cannot starve foreground writes of the disk and tiny requests are not free.
//
// Executor thread only.
#pragma once

#include <array>
#include <cstdint>

#include "io/backend.h"
#include "io/io_request.h"
#include "scheduler/histogram.h"
#include "scheduler/task_queue.h"

namespace dmalog::sched {

// Cost charged to a request on top of its bytes (a 4 KiB-equivalent).
inline constexpr uint64_t kRequestBaseCostBytes = 4096;
// Requests one Dispatch() call may hand to the backend.
inline constexpr uint32_t kDispatchBatchMax = 4096;

struct DeviceLimits {
  uint32_t in_flight_max = 256;
  uint64_t in_flight_bytes_max = 32ull << 20;
};

struct IoClassStats {
  uint64_t submitted = 0;  // Handed to the backend.
  uint64_t completed = 0;
  uint64_t errors = 0;
  uint64_t bytes_submitted = 0;
  uint64_t bytes_completed = 0;  // done_bytes of completed requests.
  uint64_t cost_dispatched = 0;  // Bytes + base cost per request.
  uint32_t in_flight = 0;
  uint64_t in_flight_bytes = 0;
  uint32_t waiting = 0;  // In the class FIFO.
  // Largest values ever observed (the limits must bound them).
  uint32_t in_flight_peak = 0;
  uint64_t in_flight_bytes_peak = 0;
  LatencyHistogram latency;  // Enqueue to completion.
};

class IoDispatcher {
 public:
  // `backend` is not owned and must outlive the dispatcher.
  IoDispatcher(io::Backend* backend, DeviceLimits limits);
  IoDispatcher(const IoDispatcher&) = delete;
  IoDispatcher& operator=(const IoDispatcher&) = delete;

  // Declares class `id` (the task queue of the same id).
  void AddClass(QueueId id, const QueueOptions& options);

  // Takes `req` (req->io_class set; see io_request.h for ownership): hands it
  // to the backend now when nothing waits and limits allow, else queues it.
  void Enqueue(io::IoRequest* req, uint64_t now_ns);
  // Moves waiting requests to the backend while limits allow.
  void Dispatch();
  // The next completed request with its accounting done, or nullptr.
  io::IoRequest* PopCompleted(uint64_t now_ns);

  uint32_t in_flight() const noexcept { return in_flight_; }
  uint32_t waiting() const noexcept { return waiting_; }
  const DeviceLimits& limits() const noexcept { return limits_; }
  IoClassStats Stats(QueueId id) const;
  // Shutdown: forgets queued requests (their owners are being destroyed).
  void DropWaiting() noexcept;

 private:
  struct IoClass {
    bool active = false;
    uint32_t shares = kSharesDefault;
    uint32_t in_flight_max = 0;
    uint64_t in_flight_bytes_max = 0;
    uint64_t vcost = 0;  // cost_dispatched * kShareScale / shares, with catch-up.
    io::IoRequestQueue fifo;
    IoClassStats stats;
  };

  bool ClassFits(const IoClass& cls, const io::IoRequest& req) const noexcept;
  bool DeviceFits(const io::IoRequest& req) const noexcept;
  IoClass* PickClass() noexcept;
  // The least vcost of classes with requests waiting or in flight.
  uint64_t MinBusyVcost(uint64_t otherwise) const noexcept;
  void Submit(IoClass& cls, io::IoRequest* req);

  io::Backend* const backend_;
  const DeviceLimits limits_;
  std::array<IoClass, kQueuesMax> classes_{};
  uint32_t in_flight_ = 0;
  uint64_t in_flight_bytes_ = 0;
  uint32_t waiting_ = 0;
};

}  // namespace dmalog::sched

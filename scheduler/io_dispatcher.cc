#include "scheduler/io_dispatcher.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace dmalog::sched {
namespace {

uint64_t TransferBytes(const io::IoRequest& req) noexcept {
  switch (req.op) {
    case io::IoOp::kRead:
    case io::IoOp::kWrite:
    case io::IoOp::kWriteFdatasync:
      return req.length_bytes;
    default:
      return 0;
  }
}

uint64_t Cost(const io::IoRequest& req) noexcept {
  return TransferBytes(req) + kRequestBaseCostBytes;
}

}  // namespace

IoDispatcher::IoDispatcher(io::Backend* backend, DeviceLimits limits)
    : backend_(backend), limits_(limits) {
  assert(backend_ != nullptr);
  assert(limits_.in_flight_max > 0 && limits_.in_flight_bytes_max > 0);
}

void IoDispatcher::AddClass(QueueId id, const QueueOptions& options) {
  assert(id < kQueuesMax);
  IoClass& cls = classes_[id];
  assert(!cls.active);
  cls.active = true;
  cls.shares = options.shares;
  cls.in_flight_max = options.io_in_flight_max;
  cls.in_flight_bytes_max = options.io_in_flight_bytes_max;
  cls.vcost = MinBusyVcost(0);
}

// A request larger than the class's byte limit still goes when the class has
// nothing in flight; otherwise it could never be dispatched.
bool IoDispatcher::ClassFits(const IoClass& cls, const io::IoRequest& req) const noexcept {
  if (cls.stats.in_flight >= cls.in_flight_max) return false;
  if (cls.stats.in_flight == 0) return true;
  return cls.stats.in_flight_bytes + TransferBytes(req) <= cls.in_flight_bytes_max;
}

bool IoDispatcher::DeviceFits(const io::IoRequest& req) const noexcept {
  if (in_flight_ >= limits_.in_flight_max) return false;
  if (backend_->capacity() == 0) return false;
  if (in_flight_ == 0) return true;
  return in_flight_bytes_ + TransferBytes(req) <= limits_.in_flight_bytes_max;
}

void IoDispatcher::Enqueue(io::IoRequest* req, uint64_t now_ns) {
  assert(req->io_class < kQueuesMax);
  IoClass& cls = classes_[req->io_class];
  assert(cls.active);
  req->submit_ns = now_ns;
  if (waiting_ == 0 && ClassFits(cls, *req) && DeviceFits(*req)) {
    Submit(cls, req);
    return;
  }
  if (cls.fifo.empty() && cls.stats.in_flight == 0) {
    // Leaving idle: no credit hoarded while idle (CFS's wake-up rule).
    cls.vcost = std::max(cls.vcost, MinBusyVcost(cls.vcost));
  }
  cls.fifo.Push(req);
  ++cls.stats.waiting;
  ++waiting_;
  Dispatch();
}

uint64_t IoDispatcher::MinBusyVcost(uint64_t otherwise) const noexcept {
  bool found = false;
  uint64_t min_vcost = 0;
  for (const IoClass& cls : classes_) {
    if (cls.fifo.empty() && cls.stats.in_flight == 0) continue;
    if (!found || cls.vcost < min_vcost) min_vcost = cls.vcost;
    found = true;
  }
  return found ? min_vcost : otherwise;
}

IoDispatcher::IoClass* IoDispatcher::PickClass() noexcept {
  IoClass* best = nullptr;
  for (IoClass& cls : classes_) {
    if (cls.fifo.empty() || !ClassFits(cls, *cls.fifo.front())) continue;
    if (best == nullptr || cls.vcost < best->vcost) best = &cls;
  }
  return best;
}

void IoDispatcher::Dispatch() {
  for (uint32_t i = 0; i < kDispatchBatchMax && waiting_ > 0; ++i) {
    IoClass* cls = PickClass();
    if (cls == nullptr || !DeviceFits(*cls->fifo.front())) return;
    io::IoRequest* req = cls->fifo.Pop();
    --cls->stats.waiting;
    --waiting_;
    Submit(*cls, req);
  }
}

void IoDispatcher::Submit(IoClass& cls, io::IoRequest* req) {
  const uint64_t bytes = TransferBytes(*req);
  IoClassStats& stats = cls.stats;
  ++stats.submitted;
  stats.bytes_submitted += bytes;
  stats.cost_dispatched += Cost(*req);
  cls.vcost += Cost(*req) * kShareScale / cls.shares;
  ++stats.in_flight;
  stats.in_flight_bytes += bytes;
  stats.in_flight_peak = std::max(stats.in_flight_peak, stats.in_flight);
  stats.in_flight_bytes_peak = std::max(stats.in_flight_bytes_peak, stats.in_flight_bytes);
  ++in_flight_;
  in_flight_bytes_ += bytes;
  // The limits are invariants (a lone oversized request is the one exception).
  assert(stats.in_flight <= cls.in_flight_max);
  assert(stats.in_flight == 1 || stats.in_flight_bytes <= cls.in_flight_bytes_max);
  assert(in_flight_ <= limits_.in_flight_max);
  assert(in_flight_ == 1 || in_flight_bytes_ <= limits_.in_flight_bytes_max);
  backend_->Submit(req);
  if (req->submit_now) backend_->SubmitNow();
}

io::IoRequest* IoDispatcher::PopCompleted(uint64_t now_ns) {
  io::IoRequest* req = backend_->PopCompleted();
  if (req == nullptr) return nullptr;
  assert(req->io_class < kQueuesMax);
  IoClass& cls = classes_[req->io_class];
  const uint64_t bytes = TransferBytes(*req);
  IoClassStats& stats = cls.stats;
  assert(stats.in_flight > 0 && in_flight_ > 0);
  assert(stats.in_flight_bytes >= bytes && in_flight_bytes_ >= bytes);
  --stats.in_flight;
  stats.in_flight_bytes -= bytes;
  --in_flight_;
  in_flight_bytes_ -= bytes;
  ++stats.completed;
  if (!req->status.ok()) ++stats.errors;
  stats.bytes_completed += req->done_bytes;
  stats.latency.Record(now_ns >= req->submit_ns ? now_ns - req->submit_ns : 0);
  return req;
}

IoClassStats IoDispatcher::Stats(QueueId id) const {
  assert(id < kQueuesMax);
  return classes_[id].stats;
}

void IoDispatcher::DropWaiting() noexcept {
  for (IoClass& cls : classes_) {
    while (cls.fifo.Pop() != nullptr) {
    }
    cls.stats.waiting = 0;
  }
  waiting_ = 0;
}

}  // namespace dmalog::sched

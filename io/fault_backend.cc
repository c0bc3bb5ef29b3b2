#include "io/fault_backend.h"

#include <linux/falloc.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "io/io_errors.h"

namespace dmalog::io {

// One caller request while the FaultBackend holds it.
struct FaultBackend::Op {
  IoRequest shadow;                   // What the inner backend sees.
  IoRequest* user = nullptr;          // Not owned: the caller's request.
  UndoLog::File* file = nullptr;      // Owned by undo_; null for reads and nops.
  UndoLog::Record* record = nullptr;  // Owned by undo_ (lives in its file).
  uint64_t short_bytes = 0;           // kShortTransfer: length of the first part, or 0.
  bool short_pending = false;
  // kWriteFdatasync, or a kWrite with RWF_DSYNC: injected failure of the
  // sync half (the write reaches the file unsynced, then the op fails).
  Status sync_fault;
  bool torn = false;  // kTornWrite fired: only torn_kept_bytes reach the file.
  uint64_t torn_kept_bytes = 0;
  UndoLog::SyncPoint sync_point;  // Syncs: the file's state when submitted.
};

namespace {

constexpr uint64_t kShortTransferAlignBytes = 4096;
constexpr uint32_t kPopsPerPollMax = 1u << 16;
constexpr uint32_t kDrainPollsMax = 1000;
constexpr int64_t kDrainPollTimeoutNs = 10'000'000;
constexpr int kFallocateModesUndoable =
    FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
static_assert(kShortTransferAlignBytes % FaultBackend::kSectorBytes == 0);
static_assert(kDrainPollsMax * kDrainPollTimeoutNs >= 10'000'000'000, "drain waits >= 10 s");

constexpr OpFilter kAllFilters[] = {OpFilter::kAny, OpFilter::kRead, OpFilter::kWrite,
                                    OpFilter::kSync, OpFilter::kFallocate};
static_assert(std::size(kAllFilters) == kOpFilterCount);

bool IsWriteOp(IoOp op) { return op == IoOp::kWrite || op == IoOp::kWriteFdatasync; }
// A write that is its own sync: RWF_DSYNC makes it durable (its own range
// only, as vfs_fsync_range does) before it completes.
bool IsDsyncWrite(const IoRequest& req) {
  return req.op == IoOp::kWrite && (req.rw_flags & RWF_DSYNC) != 0;
}
// Write and sync in one request.
bool IsWriteAndSync(const IoRequest& req) {
  return req.op == IoOp::kWriteFdatasync || IsDsyncWrite(req);
}
bool IsSyncOp(const IoRequest& req) {
  return req.op == IoOp::kFdatasync || req.op == IoOp::kFsync || IsWriteAndSync(req);
}
bool ChangesFile(IoOp op) { return IsWriteOp(op) || op == IoOp::kFallocate; }

bool Matches(OpFilter filter, const IoRequest& req) {
  const IoOp op = req.op;
  switch (filter) {
    case OpFilter::kAny:
      return true;
    case OpFilter::kRead:
      return op == IoOp::kRead;
    case OpFilter::kWrite:
      return IsWriteOp(op);
    case OpFilter::kSync:
      return IsSyncOp(req);
    case OpFilter::kFallocate:
      return op == IoOp::kFallocate;
  }
  return false;
}

uint64_t Uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  assert(lo <= hi);
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}

Status Injected(const Status& st) {
  return Status::FromCode(st.code(), st.sys_errno(),
                          std::string(st.message()) + " [injected by FaultBackend]");
}

}  // namespace

FaultBackend::FaultBackend(std::unique_ptr<Backend> inner, Options options)
    : inner_(std::move(inner)), fault_rng_(options.seed), undo_(options.seed) {
  assert(inner_ != nullptr);
  assert(inner_->in_flight() == 0);
}

FaultBackend::~FaultBackend() {
  // The inner backend may still reference shadow requests owned by ops_.
  inner_.reset();
}

std::string FaultBackend::Describe() const { return "fault(" + inner_->Describe() + ")"; }

uint32_t FaultBackend::capacity() const noexcept {
  const uint32_t inner_capacity = inner_->capacity();
  const uint32_t deferred = static_cast<uint32_t>(deferred_.size());
  return inner_capacity > deferred ? inner_capacity - deferred : 0;
}

Status FaultBackend::RegisterBuffers(std::span<const iovec> buffers) {
  return inner_->RegisterBuffers(buffers);
}

void FaultBackend::InjectAt(uint64_t nth_op, FaultSpec spec) {
  assert(nth_op >= 1);
  assert(rules_.size() < kRulesMax);
  rules_.push_back(Rule{ops_seen(spec.filter) + nth_op, spec});
}

void FaultBackend::SetFailProbability(double probability, FaultSpec spec) {
  assert(probability >= 0.0 && probability <= 1.0);
  fail_probability_ = probability;
  probability_spec_ = spec;
}

void FaultBackend::ClearFaults() {
  rules_.clear();
  fail_probability_ = 0.0;
}

// ---------------------------------------------------------------- Submission

void FaultBackend::Submit(IoRequest* req) {
  assert(req != nullptr);
  ResetProgress(req);
  in_flight_++;
  auto owned = std::make_unique<Op>();
  Op* op = owned.get();
  op->user = req;
  ops_.emplace(&op->shadow, std::move(owned));
  for (OpFilter filter : kAllFilters) {
    if (Matches(filter, *req)) ops_seen_[static_cast<uint32_t>(filter)]++;
  }
  if (dead_) return Finish(op, PowerLossStatus(*req));
  const std::optional<FaultSpec> fault = PickFault(*req);
  if (fault && ApplyFault(op, *fault)) return;
  Status st = Track(op);
  if (!st.ok()) return Finish(op, std::move(st));
  IssueOrDefer(op);
}

std::optional<FaultSpec> FaultBackend::PickFault(const IoRequest& req) {
  std::optional<FaultSpec> chosen;
  for (auto it = rules_.begin(); it != rules_.end();) {
    const bool due =
        Matches(it->spec.filter, req) && ops_seen(it->spec.filter) == it->fire_at_count;
    if (!due) {
      ++it;
      continue;
    }
    if (!chosen) chosen = it->spec;  // Rules due on the same op: the first armed wins.
    it = rules_.erase(it);
  }
  if (!chosen && fail_probability_ > 0.0 && Matches(probability_spec_.filter, req)) {
    if (std::uniform_real_distribution<double>(0.0, 1.0)(fault_rng_) < fail_probability_) {
      chosen = probability_spec_;
    }
  }
  return chosen;
}

void FaultBackend::CountFired(FaultKind kind) {
  faults_fired_[static_cast<uint32_t>(kind)]++;
  faults_fired_total_++;
}

// Returns true when the op is finished (failed) by the fault.
bool FaultBackend::ApplyFault(Op* op, const FaultSpec& spec) {
  const IoRequest& req = *op->user;
  switch (spec.kind) {
    case FaultKind::kEIO:
    case FaultKind::kENOSPC: {
      const int err = spec.kind == FaultKind::kEIO ? EIO : ENOSPC;
      CountFired(spec.kind);
      if (IsWriteAndSync(req) && spec.filter == OpFilter::kSync) {
        op->sync_fault = Injected(IoErrorStatus(IoOp::kFdatasync, req.path, 0, err));
        return false;
      }
      Finish(op, Injected(IoErrorStatus(req.op, req.path, req.offset_bytes, err)));
      return true;
    }
    case FaultKind::kShortTransfer: {
      uint64_t bytes = spec.short_transfer_bytes;
      if (bytes == FaultSpec::kRandomBytes && req.length_bytes > kShortTransferAlignBytes) {
        bytes = kShortTransferAlignBytes *
                Uniform(fault_rng_, 1, (req.length_bytes - 1) / kShortTransferAlignBytes);
      }
      if (!IsTransfer(req.op) || bytes == 0 || bytes >= req.length_bytes) return false;
      CountFired(spec.kind);
      op->short_bytes = bytes;
      return false;
    }
    case FaultKind::kTornWrite: {
      if (!IsWriteOp(req.op)) return false;
      const uint64_t sectors = (req.length_bytes + kSectorBytes - 1) / kSectorBytes;
      uint64_t kept_sectors = spec.sectors_kept;
      if (spec.sectors_kept == FaultSpec::kRandomSectors) {
        kept_sectors = sectors == 0 ? 0 : Uniform(fault_rng_, 0, sectors - 1);
      }
      CountFired(spec.kind);
      // Power dies now: later requests fail. The torn write itself still
      // waits (in IssueOrDefer) for overlapping writes already in flight.
      dead_ = true;
      op->torn = true;
      op->torn_kept_bytes = std::min(kept_sectors * kSectorBytes, req.length_bytes);
      return false;
    }
  }
  return false;
}

// Writes the kept sector prefix itself, synchronously, and fails the request.
void FaultBackend::FireTornWrite(Op* op) {
  const IoRequest& req = *op->user;
  const uint64_t kept_bytes = op->torn_kept_bytes;
  if (op->file == nullptr) return Finish(op, PowerLossStatus(req));  // Not a regular file.
  Status st = CaptureUndo(op);
  if (st.ok()) st = undo_.Tear(op->file, op->record, req.buf, req.offset_bytes, kept_bytes);
  Finish(op, st.ok() ? PowerLossStatus(req) : std::move(st));
}

Status FaultBackend::Track(Op* op) {
  const IoRequest& req = *op->user;
  if (!ChangesFile(req.op) && !IsSyncOp(req)) return Status::OK();
  if (req.op == IoOp::kFallocate && (req.fallocate_mode & ~kFallocateModesUndoable) != 0) {
    return Status::Unsupported("fallocate " + std::string(req.path) + ": mode " +
                               std::to_string(req.fallocate_mode) +
                               " cannot be undone by the FaultBackend; use mode 0, KEEP_SIZE, "
                               "PUNCH_HOLE or ZERO_RANGE in crash tests");
  }
  Result<UndoLog::File*> file = undo_.FileFor(req.fd, req.path);
  if (!file.ok()) return file.status();
  op->file = *file;
  // A RWF_DSYNC write syncs only its own range: it keeps the empty SyncPoint,
  // which covers no other record.
  if (op->file != nullptr && IsSyncOp(req) && !IsDsyncWrite(req)) {
    Result<UndoLog::SyncPoint> point = undo_.BeginSync(op->file);
    if (!point.ok()) return point.status();
    op->sync_point = *point;
  }
  return Status::OK();
}

void FaultBackend::IssueOrDefer(Op* op) {
  const bool file_has_deferred =
      op->file != nullptr && std::any_of(deferred_.begin(), deferred_.end(),
                                         [op](const Op* other) { return other->file == op->file; });
  if (file_has_deferred || MustWait(*op)) {
    assert(deferred_.size() < kDeferredMax);
    deferred_.push_back(op);
    return;
  }
  IssueNow(op);
}

// True when `op` changes a range that a write or fallocate in flight also changes.
bool FaultBackend::MustWait(const Op& op) const {
  if (op.file == nullptr || !ChangesFile(op.user->op)) return false;
  const uint64_t begin = op.user->offset_bytes;
  const uint64_t end = begin + op.user->length_bytes;
  return undo_.InFlightOverlaps(*op.file, begin, end);
}

void FaultBackend::IssueNow(Op* op) {
  const IoRequest& req = *op->user;
  if (op->torn) return FireTornWrite(op);
  if (dead_) return Finish(op, PowerLossStatus(req));  // A deferred op outlived the power.
  if (op->file != nullptr && ChangesFile(req.op)) {
    Status st = CaptureUndo(op);
    if (!st.ok()) return Finish(op, std::move(st));
  }
  // With a failing fdatasync half injected, only the write goes to the kernel.
  const bool write_only = req.op == IoOp::kWriteFdatasync && !op->sync_fault.ok();
  IoOp shadow_op = write_only ? IoOp::kWrite : req.op;
  uint64_t length = req.length_bytes;
  if (op->short_bytes != 0) {
    length = op->short_bytes;
    op->short_pending = true;
    if (req.op == IoOp::kWriteFdatasync) shadow_op = IoOp::kWrite;
  }
  SubmitShadow(op, shadow_op, 0, length);
}

Status FaultBackend::CaptureUndo(Op* op) {
  Result<UndoLog::Record*> rec = undo_.Capture(op->file, *op->user);
  if (!rec.ok()) return rec.status();
  op->record = *rec;
  return Status::OK();
}

void FaultBackend::SubmitShadow(Op* op, IoOp shadow_op, uint64_t skip_bytes,
                                uint64_t length_bytes) {
  const IoRequest& user = *op->user;
  IoRequest& shadow = op->shadow;
  shadow = IoRequest{};
  shadow.op = shadow_op;
  shadow.fd = user.fd;
  shadow.buf = user.buf != nullptr ? user.buf + skip_bytes : nullptr;
  shadow.length_bytes = length_bytes;
  shadow.offset_bytes = user.offset_bytes + skip_bytes;
  shadow.buf_index = user.buf_index;
  shadow.fallocate_mode = user.fallocate_mode;
  // With a failing sync half injected, the write goes to the kernel unsynced.
  shadow.rw_flags = op->sync_fault.ok() ? user.rw_flags : (user.rw_flags & ~RWF_DSYNC);
  shadow.max_transfer_bytes = user.max_transfer_bytes;
  shadow.path = user.path;
  shadow.io_class = user.io_class;
  shadow.submit_ns = user.submit_ns;
  assert(inner_->capacity() > 0);
  inner_->Submit(&shadow);
}

void FaultBackend::IssueDeferred() {
  std::vector<const UndoLog::File*> blocked;  // Files with an older deferred op still waiting.
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    Op* op = *it;
    const bool wait = std::find(blocked.begin(), blocked.end(), op->file) != blocked.end() ||
                      MustWait(*op) || inner_->capacity() == 0;
    if (wait) {
      blocked.push_back(op->file);
      ++it;
      continue;
    }
    it = deferred_.erase(it);
    IssueNow(op);
  }
}

// ---------------------------------------------------------------- Completion

Status FaultBackend::Poll(int64_t timeout_ns) {
  if (!finished_.empty() || !completed_.empty()) timeout_ns = 0;
  Status st = inner_->Poll(timeout_ns);
  for (uint32_t i = 0; i < kPopsPerPollMax; ++i) {
    IoRequest* shadow = inner_->PopCompleted();
    if (shadow == nullptr) break;
    OnInnerCompletion(shadow);
  }
  IssueDeferred();
  while (IoRequest* req = finished_.Pop()) completed_.Push(req);
  return st;
}

IoRequest* FaultBackend::PopCompleted() {
  IoRequest* req = completed_.Pop();
  if (req != nullptr) {
    assert(in_flight_ > 0);
    in_flight_--;
  }
  return req;
}

void FaultBackend::OnInnerCompletion(IoRequest* shadow) {
  auto it = ops_.find(shadow);
  assert(it != ops_.end() && "the inner backend returned a request it was not given");
  Op* op = it->second.get();
  IoRequest& user = *op->user;
  user.resubmits += shadow->resubmits;
  user.done_bytes += shadow->done_bytes;
  Status st = std::move(shadow->status);
  if (dead_) {
    CompleteRecord(op);
    return Finish(op, PowerLossStatus(user));
  }
  if (st.ok() && op->short_pending) {
    op->short_pending = false;
    // Like the kernel's short transfer: io/ resubmits the remainder.
    if (shadow->done_bytes == shadow->length_bytes && user.done_bytes < user.length_bytes) {
      user.resubmits++;
      const bool write_only = user.op == IoOp::kWriteFdatasync && !op->sync_fault.ok();
      return SubmitShadow(op, write_only ? IoOp::kWrite : user.op, user.done_bytes,
                          user.length_bytes - user.done_bytes);
    }
  }
  if (user.op == IoOp::kWriteFdatasync) user.sync_done = shadow->sync_done;
  CompleteRecord(op);
  if (st.ok()) {
    assert(!IsWriteOp(user.op) || user.done_bytes == user.length_bytes);
    if (!op->sync_fault.ok()) {
      st = op->sync_fault;
      user.sync_done = false;
    } else if (op->file != nullptr && IsSyncOp(user) &&
               (user.op != IoOp::kWriteFdatasync || user.sync_done)) {
      undo_.Cover(op->file, op->sync_point, op->record);
    }
  }
  Finish(op, std::move(st));
}

void FaultBackend::CompleteRecord(Op* op) {
  if (op->record != nullptr) undo_.Complete(op->record, op->user->done_bytes);
}

void FaultBackend::Finish(Op* op, Status status) {
  IoRequest* user = op->user;
  user->status = std::move(status);
  finished_.Push(user);
  ops_.erase(&op->shadow);  // Destroys op.
}

Status FaultBackend::PowerLossStatus(const IoRequest& req) const {
  const Status base = IoErrorStatus(req.op, req.path, req.offset_bytes, EIO);
  return Status::IOError(std::string(base.message()) +
                             " [FaultBackend: simulated power loss; reopen the files with a "
                             "fresh backend]",
                         EIO);
}

// ---------------------------------------------------------------- Crash

Result<CrashReport> FaultBackend::SimulateCrash(const CrashOptions& options) {
  assert(options.misdirect_probability >= 0.0 && options.misdirect_probability <= 1.0);
  if (crashed_) {
    return Status::InvalidArgument(
        "SimulateCrash: this FaultBackend already crashed; open a fresh backend");
  }
  dead_ = true;
  crashed_ = true;
  DMALOG_RETURN_IF_ERROR(DrainInner());
  while (!deferred_.empty()) {
    Op* op = deferred_.front();
    deferred_.pop_front();
    Finish(op, PowerLossStatus(*op->user));
  }
  return undo_.Restore(options);
}

// Lets the inner backend finish what it holds; with dead_ set, those requests
// complete with the power-loss error and cover nothing.
Status FaultBackend::DrainInner() {
  for (uint32_t i = 0; i < kDrainPollsMax && inner_->in_flight() > 0; ++i) {
    DMALOG_RETURN_IF_ERROR(inner_->Poll(kDrainPollTimeoutNs));
    for (uint32_t j = 0; j < kPopsPerPollMax; ++j) {
      IoRequest* shadow = inner_->PopCompleted();
      if (shadow == nullptr) break;
      OnInnerCompletion(shadow);
    }
  }
  if (inner_->in_flight() > 0) {
    return Status::IOError("SimulateCrash: the inner backend (" + inner_->Describe() +
                           ") still holds " + std::to_string(inner_->in_flight()) +
                           " requests after waiting; is the device hung?");
  }
  return Status::OK();
}

}  // namespace dmalog::io

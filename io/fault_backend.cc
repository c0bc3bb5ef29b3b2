#include "io/fault_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <list>

#include "io/io_errors.h"

namespace dmalog::io {

// An undo record: one write or fallocate that no completed sync covers yet.
struct FaultBackend::Record {
  uint64_t issue_seq = 0;       // Order in which records reached the inner backend.
  uint64_t completion_seq = 0;  // Order of completion; valid when `completed`.
  bool is_write = true;         // false: a fallocate.
  bool changes_size = true;     // A write, or a fallocate without FALLOC_FL_KEEP_SIZE.
  bool completed = false;
  bool torn = false;  // Power died during this write; done_bytes reached the file.
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  uint64_t done_bytes = 0;  // Writes: bytes that reached the file.
  uint64_t old_size_bytes = 0;
  std::vector<uint8_t> old_data;  // The file's bytes [offset, min(end, old size)) before.
  std::vector<uint8_t> new_data;  // Writes: a copy of the data written.

  uint64_t end_bytes() const { return offset_bytes + length_bytes; }
  // Bytes whose sectors may hold something new after power loss.
  uint64_t attempted_bytes() const { return torn ? length_bytes : done_bytes; }
};

// One file (inode) the backend has seen written or synced.
struct FaultBackend::FileState {
  dev_t dev = 0;
  ino_t ino = 0;
  int fd = -1;  // Owned: read-write, without O_DIRECT, valid after the caller closes its own.
  std::string path;
  uint64_t durable_size_bytes = 0;
  std::list<Record> records;  // Uncovered, in issue order (stable addresses).

  FileState() = default;
  FileState(const FileState&) = delete;
  FileState& operator=(const FileState&) = delete;
  ~FileState() {
    if (fd >= 0) close(fd);
  }
};

// One caller request while the FaultBackend holds it.
struct FaultBackend::Op {
  IoRequest shadow;           // What the inner backend sees.
  IoRequest* user = nullptr;  // Not owned: the caller's request.
  FileState* file = nullptr;  // Not owned; null for reads and nops.
  Record* record = nullptr;   // Not owned; lives in file->records.
  uint64_t short_bytes = 0;   // kShortTransfer: length of the first part, or 0.
  bool short_pending = false;
  Status sync_fault;  // kWriteFdatasync: injected failure of the fdatasync half.
  bool torn = false;  // kTornWrite fired: only torn_kept_bytes reach the file.
  uint64_t torn_kept_bytes = 0;
  // Syncs: the state when submitted.
  uint64_t sync_completion_seq = 0;
  uint64_t sync_issue_seq = 0;
  uint64_t sync_size_bytes = 0;
};

namespace {

constexpr uint64_t kShortTransferAlignBytes = 4096;
constexpr uint32_t kSyscallLoopsMax = 4096;  // Short pread/pwrite calls tolerated per range.
constexpr uint64_t kFillChunkBytes = 64 * 1024;
constexpr uint32_t kPopsPerPollMax = 1u << 16;
constexpr uint32_t kDrainPollsMax = 1000;
constexpr int64_t kDrainPollTimeoutNs = 10'000'000;
constexpr int kFallocateModesUndoable =
    FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
static_assert(kFillChunkBytes % FaultBackend::kSectorBytes == 0);
static_assert(kShortTransferAlignBytes % FaultBackend::kSectorBytes == 0);
static_assert(kDrainPollsMax * kDrainPollTimeoutNs >= 10'000'000'000, "drain waits >= 10 s");

constexpr OpFilter kAllFilters[] = {OpFilter::kAny, OpFilter::kRead, OpFilter::kWrite,
                                    OpFilter::kSync, OpFilter::kFallocate};
static_assert(std::size(kAllFilters) == kOpFilterCount);

bool IsWriteOp(IoOp op) { return op == IoOp::kWrite || op == IoOp::kWriteFdatasync; }
bool IsSyncOp(IoOp op) {
  return op == IoOp::kFdatasync || op == IoOp::kFsync || op == IoOp::kWriteFdatasync;
}
bool ChangesFile(IoOp op) { return IsWriteOp(op) || op == IoOp::kFallocate; }

bool Matches(OpFilter filter, IoOp op) {
  switch (filter) {
    case OpFilter::kAny:
      return true;
    case OpFilter::kRead:
      return op == IoOp::kRead;
    case OpFilter::kWrite:
      return IsWriteOp(op);
    case OpFilter::kSync:
      return IsSyncOp(op);
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

Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return SyscallErrorStatus("fstat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

// Reads [offset, offset + length); bytes past end of file read as zeros.
Status PreadAll(int fd, const std::string& path, uint8_t* buf, uint64_t length, uint64_t offset) {
  uint64_t done = 0;
  for (uint32_t i = 0; i < kSyscallLoopsMax && done < length; ++i) {
    const ssize_t n = pread(fd, buf + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SyscallErrorStatus("pread (FaultBackend undo record)", path, errno);
    if (n == 0) {
      std::memset(buf + done, 0, length - done);
      return Status::OK();
    }
    done += static_cast<uint64_t>(n);
  }
  if (done < length) return Status::IOError("pread " + path + ": no progress (FaultBackend)");
  return Status::OK();
}

Status PwriteAll(int fd, const std::string& path, const uint8_t* buf, uint64_t length,
                 uint64_t offset) {
  uint64_t done = 0;
  for (uint32_t i = 0; i < kSyscallLoopsMax && done < length; ++i) {
    const ssize_t n = pwrite(fd, buf + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SyscallErrorStatus("pwrite (FaultBackend crash simulation)", path, errno);
    done += static_cast<uint64_t>(n);
  }
  if (done < length) return Status::IOError("pwrite " + path + ": no progress (FaultBackend)");
  return Status::OK();
}

// Writes zeros, or garbage drawn from `rng`, over [offset, offset + length).
Status FillRange(int fd, const std::string& path, uint64_t offset, uint64_t length, bool garbage,
                 std::mt19937_64& rng) {
  std::vector<uint8_t> chunk(std::min(length, kFillChunkBytes), 0);
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min<uint64_t>(chunk.size(), length - done);
    if (garbage) {
      for (uint64_t i = 0; i < n; ++i) chunk[i] = static_cast<uint8_t>(rng());
    }
    DMALOG_RETURN_IF_ERROR(PwriteAll(fd, path, chunk.data(), n, offset + done));
    done += n;
  }
  return Status::OK();
}

const char* EventKindName(CrashEvent::Kind kind) {
  switch (kind) {
    case CrashEvent::Kind::kDropped:
      return "dropped";
    case CrashEvent::Kind::kTorn:
      return "torn";
    case CrashEvent::Kind::kMisdirected:
      return "misdirected";
    case CrashEvent::Kind::kBitFlip:
      return "bit-flip";
    case CrashEvent::Kind::kResized:
      return "resized";
  }
  return "?";
}

}  // namespace

std::string CrashEvent::ToString() const {
  std::string out = std::string(EventKindName(kind)) + " " + path;
  out += " offset=" + std::to_string(offset_bytes) + " length=" + std::to_string(length_bytes);
  if (kind == Kind::kTorn) out += " kept=" + std::to_string(kept_bytes);
  if (kind == Kind::kMisdirected || kind == Kind::kBitFlip || kind == Kind::kResized) {
    out += " target=" + std::to_string(target_offset_bytes);
  }
  if (kind == Kind::kBitFlip) out += " bit=" + std::to_string(bit);
  return out;
}

uint64_t CrashReport::Count(CrashEvent::Kind kind) const {
  return static_cast<uint64_t>(std::count_if(
      events.begin(), events.end(), [kind](const CrashEvent& e) { return e.kind == kind; }));
}

std::string CrashReport::ToString() const {
  std::string out;
  for (const CrashEvent& event : events) out += event.ToString() + "\n";
  return out;
}

FaultBackend::FaultBackend(std::unique_ptr<Backend> inner, Options options)
    : inner_(std::move(inner)),
      fault_rng_(options.seed),
      crash_rng_(options.seed ^ 0x9e3779b97f4a7c15ull) {
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

uint64_t FaultBackend::uncovered_records() const noexcept {
  uint64_t total = 0;
  for (const auto& file : files_) total += file->records.size();
  return total;
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
    if (Matches(filter, req->op)) ops_seen_[static_cast<uint32_t>(filter)]++;
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
        Matches(it->spec.filter, req.op) && ops_seen(it->spec.filter) == it->fire_at_count;
    if (!due) {
      ++it;
      continue;
    }
    if (!chosen) chosen = it->spec;  // Rules due on the same op: the first armed wins.
    it = rules_.erase(it);
  }
  if (!chosen && fail_probability_ > 0.0 && Matches(probability_spec_.filter, req.op)) {
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
      if (req.op == IoOp::kWriteFdatasync && spec.filter == OpFilter::kSync) {
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
  if (st.ok() && kept_bytes > 0) {
    st = PwriteAll(op->file->fd, op->file->path, req.buf, kept_bytes, req.offset_bytes);
  }
  if (st.ok() && op->record != nullptr) {
    op->record->torn = true;
    op->record->completed = true;
    op->record->completion_seq = ++completion_seq_;
    op->record->done_bytes = kept_bytes;
  }
  Finish(op, st.ok() ? PowerLossStatus(req) : std::move(st));
}

Status FaultBackend::Track(Op* op) {
  const IoRequest& req = *op->user;
  if (!ChangesFile(req.op) && !IsSyncOp(req.op)) return Status::OK();
  if (req.op == IoOp::kFallocate && (req.fallocate_mode & ~kFallocateModesUndoable) != 0) {
    return Status::Unsupported("fallocate " + std::string(req.path) + ": mode " +
                               std::to_string(req.fallocate_mode) +
                               " cannot be undone by the FaultBackend; use mode 0, KEEP_SIZE, "
                               "PUNCH_HOLE or ZERO_RANGE in crash tests");
  }
  Result<FileState*> file = FileFor(req);
  if (!file.ok()) return file.status();
  op->file = *file;
  if (op->file != nullptr && IsSyncOp(req.op)) {
    Result<uint64_t> size = FileSize(op->file->fd, op->file->path);
    if (!size.ok()) return size.status();
    op->sync_completion_seq = completion_seq_;
    op->sync_issue_seq = issue_seq_;
    op->sync_size_bytes = *size;
  }
  return Status::OK();
}

Result<FaultBackend::FileState*> FaultBackend::FileFor(const IoRequest& req) {
  struct stat st;
  if (fstat(req.fd, &st) != 0) return SyscallErrorStatus("fstat", req.path, errno);
  // Directories (fsync after create/rename) and devices are passed through untracked.
  if (!S_ISREG(st.st_mode)) return static_cast<FileState*>(nullptr);
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  if (auto it = files_by_inode_.find(key); it != files_by_inode_.end()) return it->second;
  assert(files_.size() < kTrackedFilesMax);
  const std::string proc_path = "/proc/self/fd/" + std::to_string(req.fd);
  auto file = std::make_unique<FileState>();
  file->dev = st.st_dev;
  file->ino = st.st_ino;
  file->path = req.path[0] != '\0' ? std::string(req.path) : proc_path;
  file->fd = open(proc_path.c_str(), O_RDWR | O_CLOEXEC);
  if (file->fd < 0) {
    return SyscallErrorStatus("open", proc_path + " (" + file->path + ")", errno,
                              "the FaultBackend needs a read-write descriptor for undo records");
  }
  FileState* raw = file.get();
  files_.push_back(std::move(file));
  files_by_inode_.emplace(key, raw);
  return raw;
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
  return std::any_of(op.file->records.begin(), op.file->records.end(), [&](const Record& r) {
    return !r.completed && r.offset_bytes < end && begin < r.end_bytes();
  });
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
  const IoRequest& req = *op->user;
  FileState* file = op->file;
  assert(file->records.size() < kUncoveredRecordsMax);
  Result<uint64_t> old_size = FileSize(file->fd, file->path);
  if (!old_size.ok()) return old_size.status();
  Record rec;
  rec.is_write = IsWriteOp(req.op);
  rec.changes_size = rec.is_write || (req.fallocate_mode & FALLOC_FL_KEEP_SIZE) == 0;
  rec.offset_bytes = req.offset_bytes;
  rec.length_bytes = req.length_bytes;
  rec.old_size_bytes = *old_size;
  const bool changes_data =
      rec.is_write || (req.fallocate_mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0;
  const bool grows = rec.changes_size && rec.end_bytes() > rec.old_size_bytes;
  if (!changes_data && !grows) return Status::OK();  // Nothing a crash could undo.
  if (changes_data && rec.offset_bytes < rec.old_size_bytes) {
    rec.old_data.resize(std::min(rec.end_bytes(), rec.old_size_bytes) - rec.offset_bytes);
    DMALOG_RETURN_IF_ERROR(
        PreadAll(file->fd, file->path, rec.old_data.data(), rec.old_data.size(), rec.offset_bytes));
  }
  if (rec.is_write) rec.new_data.assign(req.buf, req.buf + req.length_bytes);
  rec.issue_seq = ++issue_seq_;
  file->records.push_back(std::move(rec));
  op->record = &file->records.back();
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
  shadow.max_transfer_bytes = user.max_transfer_bytes;
  shadow.path = user.path;
  shadow.io_class = user.io_class;
  shadow.submit_ns = user.submit_ns;
  assert(inner_->capacity() > 0);
  inner_->Submit(&shadow);
}

void FaultBackend::IssueDeferred() {
  std::vector<const FileState*> blocked;  // Files with an older deferred op still waiting.
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
    } else if (op->file != nullptr && IsSyncOp(user.op) &&
               (user.op != IoOp::kWriteFdatasync || user.sync_done)) {
      Cover(op->file, *op);
    }
  }
  Finish(op, std::move(st));
}

void FaultBackend::CompleteRecord(Op* op) {
  Record* rec = op->record;
  if (rec == nullptr || rec->completed) return;
  rec->completed = true;
  rec->completion_seq = ++completion_seq_;
  if (rec->is_write) rec->done_bytes = op->user->done_bytes;
}

// A sync succeeded: what completed before it was submitted (and, for
// kWriteFdatasync, its own write) is durable.
void FaultBackend::Cover(FileState* file, const Op& sync_op) {
  uint64_t covered_end_bytes = file->durable_size_bytes;
  for (auto it = file->records.begin(); it != file->records.end();) {
    const Record& rec = *it;
    const bool covered =
        !rec.torn && rec.completed &&
        (&rec == sync_op.record || rec.completion_seq <= sync_op.sync_completion_seq);
    if (!covered) {
      ++it;
      continue;
    }
    const uint64_t end = rec.is_write ? rec.offset_bytes + rec.done_bytes : rec.end_bytes();
    if (rec.changes_size) covered_end_bytes = std::max(covered_end_bytes, end);
    it = file->records.erase(it);
  }
  const bool older_uncovered =
      std::any_of(file->records.begin(), file->records.end(),
                  [&](const Record& r) { return r.issue_seq <= sync_op.sync_issue_seq; });
  // With nothing older pending, the size seen at submission is exactly what the sync made durable.
  file->durable_size_bytes =
      older_uncovered ? covered_end_bytes : std::max(sync_op.sync_size_bytes, covered_end_bytes);
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

// What a crash leaves of one unsynced record.
struct FaultBackend::Outcome {
  const Record* rec = nullptr;
  uint64_t kept_bytes = 0;  // Prefix of the new data that reached the file.
  bool misdirected = false;
};

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
  CrashReport report;
  for (const auto& file : files_) {
    DMALOG_RETURN_IF_ERROR(CrashFile(file.get(), options, &report));
  }
  DMALOG_RETURN_IF_ERROR(FlipBits(options, &report));
  return report;
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

Status FaultBackend::CrashFile(FileState* file, const CrashOptions& options, CrashReport* report) {
  if (file->records.empty()) return Status::OK();
  Result<uint64_t> size_before = FileSize(file->fd, file->path);
  if (!size_before.ok()) return size_before.status();
  // 1. Undo every record, newest first: the file is back to its synced state.
  for (auto it = file->records.rbegin(); it != file->records.rend(); ++it) {
    const Record& rec = *it;
    DMALOG_RETURN_IF_ERROR(PwriteAll(file->fd, file->path, rec.old_data.data(), rec.old_data.size(),
                                     rec.offset_bytes));
    if (rec.is_write && rec.end_bytes() > rec.old_size_bytes) {
      const uint64_t begin = std::max(rec.offset_bytes, rec.old_size_bytes);
      DMALOG_RETURN_IF_ERROR(
          FillRange(file->fd, file->path, begin, rec.end_bytes() - begin, false, crash_rng_));
    }
  }
  // 2. Decide what survives, and the length the file ends with.
  std::vector<Outcome> outcomes;
  uint64_t size = std::max(file->durable_size_bytes, file->records.front().old_size_bytes);
  for (const Record& rec : file->records) {
    outcomes.push_back(Decide(rec, options));
    const uint64_t kept = outcomes.back().kept_bytes;
    if (kept > 0) size = std::max(size, rec.offset_bytes + kept);
  }
  if (options.keep_unsynced_size) size = *size_before;
  if (ftruncate(file->fd, static_cast<off_t>(size)) != 0) {
    return SyscallErrorStatus("ftruncate (FaultBackend crash simulation)", file->path, errno);
  }
  if (size != *size_before) {
    report->events.push_back(
        CrashEvent{CrashEvent::Kind::kResized, file->path, 0, *size_before, 0, size, 0});
  }
  // 3. Replay the survivors, oldest first.
  for (const Outcome& outcome : outcomes) {
    DMALOG_RETURN_IF_ERROR(Apply(*file, outcome, size, options, report));
  }
  file->records.clear();
  return Status::OK();
}

FaultBackend::Outcome FaultBackend::Decide(const Record& rec, const CrashOptions& options) {
  Outcome outcome;
  outcome.rec = &rec;
  if (!rec.is_write) return outcome;  // A fallocate vanishes whole.
  if (rec.torn) {
    outcome.kept_bytes = rec.done_bytes;
    return outcome;
  }
  const uint64_t sectors = (rec.done_bytes + kSectorBytes - 1) / kSectorBytes;
  if (options.tear_unsynced_writes && sectors > 0) {
    outcome.kept_bytes = std::min(Uniform(crash_rng_, 0, sectors) * kSectorBytes, rec.done_bytes);
  }
  if (options.misdirect_probability > 0.0 && rec.done_bytes > 0 &&
      std::uniform_real_distribution<double>(0.0, 1.0)(crash_rng_) <
          options.misdirect_probability) {
    outcome.misdirected = true;
    outcome.kept_bytes = 0;
  }
  return outcome;
}

Status FaultBackend::Apply(const FileState& file, const Outcome& outcome, uint64_t size_bytes,
                           const CrashOptions& options, CrashReport* report) {
  const Record& rec = *outcome.rec;
  CrashEvent event{
      CrashEvent::Kind::kDropped, file.path, rec.offset_bytes, rec.length_bytes, 0, 0, 0};
  if (outcome.kept_bytes > 0) {
    event.kind = CrashEvent::Kind::kTorn;
    event.kept_bytes = outcome.kept_bytes;
    DMALOG_RETURN_IF_ERROR(
        PwriteAll(file.fd, file.path, rec.new_data.data(), outcome.kept_bytes, rec.offset_bytes));
  }
  const uint64_t fill_begin = rec.offset_bytes + outcome.kept_bytes;
  const uint64_t fill_end = std::min(rec.offset_bytes + rec.attempted_bytes(), size_bytes);
  if (rec.is_write && options.fill != UnsyncedFill::kOldData && fill_begin < fill_end) {
    DMALOG_RETURN_IF_ERROR(FillRange(file.fd, file.path, fill_begin, fill_end - fill_begin,
                                     options.fill == UnsyncedFill::kGarbage, crash_rng_));
  }
  const uint64_t slots = size_bytes >= rec.done_bytes + kSectorBytes
                             ? (size_bytes - rec.done_bytes) / kSectorBytes
                             : 0;
  if (outcome.misdirected && slots > 0) {
    uint64_t target = Uniform(crash_rng_, 0, slots) * kSectorBytes;
    if (target == rec.offset_bytes) target = target == 0 ? kSectorBytes : 0;
    event.kind = CrashEvent::Kind::kMisdirected;
    event.target_offset_bytes = target;
    DMALOG_RETURN_IF_ERROR(
        PwriteAll(file.fd, file.path, rec.new_data.data(), rec.done_bytes, target));
  }
  report->events.push_back(std::move(event));
  return Status::OK();
}

// Flips bits below the synced length of files chosen at random.
Status FaultBackend::FlipBits(const CrashOptions& options, CrashReport* report) {
  for (uint32_t i = 0; i < options.synced_bit_flips; ++i) {
    std::vector<std::pair<FileState*, uint64_t>> candidates;  // File, synced bytes.
    for (const auto& file : files_) {
      Result<uint64_t> size = FileSize(file->fd, file->path);
      if (!size.ok()) return size.status();
      const uint64_t synced = std::min(*size, file->durable_size_bytes);
      if (synced > 0) candidates.emplace_back(file.get(), synced);
    }
    if (candidates.empty()) return Status::OK();
    const auto& [file, synced] = candidates[Uniform(crash_rng_, 0, candidates.size() - 1)];
    const uint64_t offset = Uniform(crash_rng_, 0, synced - 1);
    const uint32_t bit = static_cast<uint32_t>(Uniform(crash_rng_, 0, 7));
    uint8_t byte = 0;
    DMALOG_RETURN_IF_ERROR(PreadAll(file->fd, file->path, &byte, 1, offset));
    byte ^= static_cast<uint8_t>(1u << bit);
    DMALOG_RETURN_IF_ERROR(PwriteAll(file->fd, file->path, &byte, 1, offset));
    report->events.push_back(
        CrashEvent{CrashEvent::Kind::kBitFlip, file->path, 0, 0, 0, offset, bit});
  }
  return Status::OK();
}

}  // namespace dmalog::io

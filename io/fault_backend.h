// FaultBackend: an io::Backend for tests that wraps a real backend and
// injects faults (LevelDB's fault_injection_test Env is the model).
//
// It can
//   - fail the Nth matching operation (or each one with a probability) with
//     EIO or ENOSPC;
//   - make a read or write transfer only a prefix first (a short transfer, as
//     the kernel may do); the remainder is resubmitted, counted in
//     req->resubmits, and the request still completes in full;
//   - tear a write: only its first K 512 B sectors reach the file, then the
//     "power dies": that request and every later one fail with EIO
//     ("simulated power loss"). Requests already in flight still complete
//     (with that error; their data may have landed, as on a real device);
//     the torn prefix lands once overlapping in-flight writes are done;
//   - simulate a crash (SimulateCrash): every write, fallocate and size change
//     that no completed fdatasync/fsync covers is undone, except what the
//     CrashOptions keep: a torn sector prefix, garbage or zero sectors, a
//     misdirected write, flipped bits in synced data.
//
// Durability model and undo records: see io/undo_log.h (the UndoLog keeps
// one undo record per write or fallocate that no completed sync covers, and
// restores the files on SimulateCrash). Two writes to overlapping ranges of
// one file are never in flight together: the later one waits inside the
// FaultBackend until the earlier completes, so the undo records restore,
// newest first, exactly the pre-crash state.
//
// Determinism: every random choice comes from std::mt19937_64 generators
// seeded from Options::seed, so the same seed and the same sequence of
// operations give the same faults and the same CrashReport.
//
// Thread-safety: as io::Backend (one thread, except Wake()).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/backend.h"
#include "io/undo_log.h"

namespace dmalog::io {

// Which operations a fault rule counts and matches.
enum class OpFilter : uint8_t {
  kAny,        // Every operation.
  kRead,       // kRead.
  kWrite,      // kWrite and the write half of kWriteFdatasync.
  kSync,       // kFdatasync, kFsync and the fdatasync half of kWriteFdatasync.
  kFallocate,  // kFallocate.
};
inline constexpr uint32_t kOpFilterCount = 5;

enum class FaultKind : uint8_t {
  kEIO,            // The operation fails with EIO; nothing reaches the file.
  kENOSPC,         // The operation fails with ENOSPC ("disk full").
  kShortTransfer,  // A read/write first moves only short_transfer_bytes.
  kTornWrite,      // Only sectors_kept sectors reach the file; power dies.
};
inline constexpr uint32_t kFaultKindCount = 4;

struct FaultSpec {
  static constexpr uint64_t kRandomBytes = UINT64_MAX;
  static constexpr uint32_t kRandomSectors = UINT32_MAX;

  FaultKind kind = FaultKind::kEIO;
  OpFilter filter = OpFilter::kAny;
  // kShortTransfer: bytes the first kernel call moves. Must be positive; a
  // request no longer than this is not shortened (the fault does not fire).
  // kRandomBytes: a random multiple of 4096 below the request length.
  uint64_t short_transfer_bytes = kRandomBytes;
  // kTornWrite: 512 B sectors of the write that reach the file (capped at the
  // write's length). kRandomSectors: uniform in [0, sectors of the write).
  uint32_t sectors_kept = kRandomSectors;

  static FaultSpec Eio(OpFilter filter = OpFilter::kAny) { return {FaultKind::kEIO, filter}; }
  static FaultSpec NoSpace(OpFilter filter = OpFilter::kWrite) {
    return {FaultKind::kENOSPC, filter};
  }
  static FaultSpec ShortTransfer(OpFilter filter, uint64_t bytes) {
    return {FaultKind::kShortTransfer, filter, bytes};
  }
  static FaultSpec TornWrite(uint32_t sectors) {
    return {FaultKind::kTornWrite, OpFilter::kWrite, kRandomBytes, sectors};
  }
};

class FaultBackend final : public Backend {
 public:
  static constexpr uint64_t kSectorBytes = UndoLog::kSectorBytes;
  static constexpr uint32_t kRulesMax = 256;
  static constexpr uint32_t kTrackedFilesMax = UndoLog::kTrackedFilesMax;
  static constexpr uint32_t kUncoveredRecordsMax = UndoLog::kUncoveredRecordsMax;
  static constexpr uint32_t kDeferredMax = 1u << 16;

  struct Options {
    uint64_t seed = 1;
  };

  // Takes ownership of `inner`, which must not be null and must have no
  // request in flight.
  FaultBackend(std::unique_ptr<Backend> inner, Options options);
  ~FaultBackend() override;

  // ---- io::Backend.
  BackendKind kind() const noexcept override { return BackendKind::kFault; }
  std::string Describe() const override;  // "fault(<inner>)"
  uint32_t capacity() const noexcept override;
  uint32_t in_flight() const noexcept override { return in_flight_; }
  void Submit(IoRequest* req) override;
  Status Poll(int64_t timeout_ns) override;
  IoRequest* PopCompleted() override;
  void Wake() override { inner_->Wake(); }
  void SubmitNow() override { inner_->SubmitNow(); }
  Status RegisterBuffers(std::span<const iovec> buffers) override;

  // ---- Faults.
  // Fires `spec` on the nth operation matching spec.filter submitted after
  // this call (nth_op = 1: the very next one). Several rules may be armed; a
  // rule fires once. On kWriteFdatasync, a rule with filter kSync lets the
  // write reach the file and fails only the fdatasync.
  void InjectAt(uint64_t nth_op, FaultSpec spec);
  // Fires `spec` on each operation matching spec.filter with `probability`
  // (0 disables), drawn from the seeded generator.
  void SetFailProbability(double probability, FaultSpec spec);
  // Disarms every rule and the probability mode.
  void ClearFaults();

  // ---- Crash.
  // Simulates power loss now: waits for the requests the inner backend holds
  // (they then complete with EIO "simulated power loss"), undoes everything no
  // completed sync covers, as `options` says, and reports what it did. The
  // backend is dead afterwards: every request fails until it is destroyed;
  // reopen the files with a fresh backend. Fails if called twice, or if a
  // file cannot be restored (the error names the file and the errno).
  Result<CrashReport> SimulateCrash(const CrashOptions& options);

  // True after a torn write or SimulateCrash.
  bool dead() const noexcept { return dead_; }
  // Operations submitted that match `filter`.
  uint64_t ops_seen(OpFilter filter) const noexcept {
    return ops_seen_[static_cast<uint32_t>(filter)];
  }
  uint64_t faults_fired() const noexcept { return faults_fired_total_; }
  uint64_t faults_fired(FaultKind kind) const noexcept {
    return faults_fired_[static_cast<uint32_t>(kind)];
  }
  // Writes and fallocates that a crash now would undo, over all files.
  uint64_t uncovered_records() const noexcept { return undo_.uncovered_records(); }

 private:
  struct Op;
  struct Rule {
    uint64_t fire_at_count;  // ops_seen(spec.filter) value that fires it.
    FaultSpec spec;
  };

  // Submission.
  std::optional<FaultSpec> PickFault(const IoRequest& req);
  void CountFired(FaultKind kind);
  bool ApplyFault(Op* op, const FaultSpec& spec);
  void FireTornWrite(Op* op);
  Status Track(Op* op);
  void IssueOrDefer(Op* op);
  bool MustWait(const Op& op) const;
  void IssueNow(Op* op);
  Status CaptureUndo(Op* op);
  void SubmitShadow(Op* op, IoOp shadow_op, uint64_t skip_bytes, uint64_t length_bytes);
  void IssueDeferred();

  // Completion.
  void OnInnerCompletion(IoRequest* shadow);
  void CompleteRecord(Op* op);
  void Finish(Op* op, Status status);
  Status PowerLossStatus(const IoRequest& req) const;

  // Crash.
  Status DrainInner();

  std::unique_ptr<Backend> inner_;
  std::mt19937_64 fault_rng_;

  std::vector<Rule> rules_;
  double fail_probability_ = 0.0;
  FaultSpec probability_spec_;

  uint64_t ops_seen_[kOpFilterCount] = {};
  uint64_t faults_fired_[kFaultKindCount] = {};
  uint64_t faults_fired_total_ = 0;

  UndoLog undo_;  // Undo records of every tracked file.

  // Ops owned here, keyed by the address of their shadow request.
  std::unordered_map<IoRequest*, std::unique_ptr<Op>> ops_;
  std::deque<Op*> deferred_;  // Writes waiting for an overlapping one.
  IoRequestQueue finished_;   // Done, returned to the caller at the next Poll.
  IoRequestQueue completed_;  // Returned by PopCompleted.
  uint32_t in_flight_ = 0;
  bool dead_ = false;
  bool crashed_ = false;
};

}  // namespace dmalog::io

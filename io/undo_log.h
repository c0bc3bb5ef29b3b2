// UndoLog: the FaultBackend's durability bookkeeping (test-only). It keeps,
// per file, an undo record for every write and fallocate that no completed
// sync covers yet, and on a simulated crash restores each file to what the
// syncs made durable, keeping what the CrashOptions ask for.
//
// Durability model. Files are tracked by inode (st_dev, st_ino), so a sync on
// any descriptor of a file covers the writes made through every descriptor,
// and a descriptor number reused for another file is told apart. A sync
// covers the records that completed before the sync was submitted (its
// SyncPoint); a kWriteFdatasync whose fdatasync succeeded also covers its own
// write. The file size is durable when a covering sync succeeded with no
// older record still uncovered. Directory entries are not modelled.
//
// Undo records. Before a write or fallocate reaches the file, Capture reads
// the bytes it will replace and the file size (synchronous pread on its own
// descriptor, opened through /proc/self/fd without O_DIRECT). The caller
// (FaultBackend) never has two overlapping changes of one file in flight
// (see InFlightOverlaps), so Restore, undoing newest first, gives back
// exactly the pre-crash state before replaying what survives.
//
// Determinism: the crash choices come from a std::mt19937_64 seeded from the
// constructor's seed.
//
// Thread-safety: none; used by one FaultBackend on one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dmalog/status.h"
#include "io/io_request.h"

namespace dmalog::io {

// What the sectors of an unsynced write that do not survive a crash contain.
enum class UnsyncedFill : uint8_t {
  kOldData,  // What the file held before the write (a clean drop).
  kZeros,
  kGarbage,  // Random bytes.
};

struct CrashOptions {
  // Each unsynced write keeps a random prefix of its 512 B sectors, uniform in
  // [0, all of them]. When false, unsynced writes vanish entirely (except a
  // write torn by kTornWrite, which keeps its prefix in any case).
  bool tear_unsynced_writes = false;
  // With tear_unsynced_writes: each unsynced write keeps a random subset of
  // its sectors instead of a prefix (a device persists the sectors of one
  // write in any order, and the kernel may split a write into requests
  // that complete in any order).
  bool tear_out_of_order = false;
  UnsyncedFill fill = UnsyncedFill::kOldData;
  // Keep the file length reached before the crash (the size update was
  // journaled, the data was not), so filled sectors past the synced length
  // stay visible. When false, the file is cut back to the synced length or
  // the end of the surviving prefixes, whichever is longer.
  bool keep_unsynced_size = false;
  // Probability that an unsynced write lands, whole, at a wrong
  // sector-aligned offset of its file instead of its own.
  double misdirect_probability = 0.0;
  // Bits flipped at random in synced data (bytes below a file's synced size).
  uint32_t synced_bit_flips = 0;
};

struct CrashEvent {
  enum class Kind : uint8_t {
    kDropped,      // The write (or fallocate) vanished.
    kTorn,         // Only kept_bytes of it survived.
    kMisdirected,  // Its data landed at target_offset_bytes.
    kBitFlip,      // Bit `bit` of the byte at target_offset_bytes flipped.
    kResized,      // The file length changed from length_bytes to target_offset_bytes.
  };
  Kind kind = Kind::kDropped;
  std::string path;
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  uint64_t kept_bytes = 0;
  uint64_t target_offset_bytes = 0;
  uint32_t bit = 0;
  bool out_of_order = false;  // kTorn: kept_bytes are a subset of its sectors, not a prefix.

  std::string ToString() const;
  bool operator==(const CrashEvent&) const = default;
};

struct CrashReport {
  std::vector<CrashEvent> events;

  uint64_t Count(CrashEvent::Kind kind) const;
  // One event a line, for test diagnostics.
  std::string ToString() const;
  bool operator==(const CrashReport&) const = default;
};

class UndoLog {
 public:
  static constexpr uint64_t kSectorBytes = 512;
  static constexpr uint32_t kTrackedFilesMax = 4096;
  static constexpr uint32_t kUncoveredRecordsMax = 1u << 20;

  struct File;    // One tracked inode.
  struct Record;  // One uncovered write or fallocate; lives in its File.
  // The state of a file when a sync was submitted.
  struct SyncPoint {
    uint64_t completion_seq = 0;  // Records completed before the sync.
    uint64_t issue_seq = 0;       // Records issued before the sync.
    uint64_t size_bytes = 0;      // The file size then.
  };

  explicit UndoLog(uint64_t seed);
  ~UndoLog();
  UndoLog(const UndoLog&) = delete;
  UndoLog& operator=(const UndoLog&) = delete;

  // The tracked file behind `fd` (tracking it from now on); null for
  // directories and devices, which are passed through untracked. `path`
  // (borrowed for the call) names the file in records and errors.
  Result<File*> FileFor(int fd, const char* path);
  // Records what the write or fallocate `req` (borrowed for the call) is
  // about to replace in `file` (not null, owned by this log). Returns null
  // when the operation changes nothing a crash could undo.
  Result<Record*> Capture(File* file, const IoRequest& req);
  // The operation of `rec` (not null, owned here) completed; for a write,
  // `done_bytes` reached the file. Later calls for the same record are ignored.
  void Complete(Record* rec, uint64_t done_bytes);
  // Power died during the write of `rec` (owned here; may be null when
  // nothing was captured): only the first `kept_bytes` of `data` (borrowed
  // for the call) reach `file` at `offset_bytes`.
  Status Tear(File* file, Record* rec, const uint8_t* data, uint64_t offset_bytes,
              uint64_t kept_bytes);
  // True when a change of [begin, end) of `file` is issued and not completed.
  bool InFlightOverlaps(const File& file, uint64_t begin_bytes, uint64_t end_bytes) const;

  // Call when a sync of `file` is submitted.
  Result<SyncPoint> BeginSync(File* file);
  // A sync submitted at `sync` succeeded: the records it covers (and `own`,
  // the write of a kWriteFdatasync, or null) become durable and are dropped.
  void Cover(File* file, const SyncPoint& sync, const Record* own);

  // Power loss: restores every file to its synced state plus what `options`
  // keeps, and reports what it did. Every record is consumed.
  Result<CrashReport> Restore(const CrashOptions& options);

  // Writes and fallocates that a crash now would undo, over all files.
  uint64_t uncovered_records() const noexcept;

 private:
  struct Outcome;
  Status RestoreFile(File* file, const CrashOptions& options, CrashReport* report);
  Outcome Decide(const Record& rec, const CrashOptions& options);
  static uint64_t KeptEndBytes(const Outcome& outcome);
  Status Apply(const File& file, const Outcome& outcome, uint64_t size_bytes,
               const CrashOptions& options, CrashReport* report);
  Status FlipBits(const CrashOptions& options, CrashReport* report);

  std::mt19937_64 crash_rng_;
  // Tracked files, in the order they were first seen.
  std::vector<std::unique_ptr<File>> files_;
  std::map<std::pair<dev_t, ino_t>, File*> files_by_inode_;
  uint64_t issue_seq_ = 0;       // Records issued so far.
  uint64_t completion_seq_ = 0;  // Records completed so far.
};

}  // namespace dmalog::io

#include "io/undo_log.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "io/io_errors.h"

namespace dmalog::io {

// An undo record: one write or fallocate that no completed sync covers yet.
struct UndoLog::Record {
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

// One file (inode) seen written or synced.
struct UndoLog::File {
  dev_t dev = 0;
  ino_t ino = 0;
  int fd = -1;  // Owned: read-write, without O_DIRECT, valid after the caller closes its own.
  std::string path;
  uint64_t durable_size_bytes = 0;
  std::list<Record> records;  // Uncovered, in issue order (stable addresses).

  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (fd >= 0) close(fd);
  }
};

// What a crash leaves of one unsynced record.
struct UndoLog::Outcome {
  const Record* rec = nullptr;
  uint64_t kept_bytes = 0;  // Prefix of the new data that reached the file.
  // Out-of-order tear: the sectors of the new data that reached the file
  // (kept_bytes is then their total); empty for a prefix.
  std::vector<bool> kept_sectors;
  bool misdirected = false;
};

namespace {

constexpr uint32_t kSyscallLoopsMax = 4096;  // Short pread/pwrite calls tolerated per range.
constexpr uint64_t kFillChunkBytes = 64 * 1024;
static_assert(kFillChunkBytes % UndoLog::kSectorBytes == 0);

bool IsWriteOp(IoOp op) { return op == IoOp::kWrite || op == IoOp::kWriteFdatasync; }

uint64_t Uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  assert(lo <= hi);
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
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

// The bytes of sector `i` of a write of `done_bytes` (the last may be short).
uint64_t SectorBytesOf(uint64_t done_bytes, uint64_t i) {
  return std::min<uint64_t>(UndoLog::kSectorBytes, done_bytes - i * UndoLog::kSectorBytes);
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

// Where, from the write's start, its surviving new data ends: the kept
// prefix, or the end of the last kept sector of an out-of-order tear.
uint64_t UndoLog::KeptEndBytes(const Outcome& outcome) {
  const std::vector<bool>& kept = outcome.kept_sectors;
  for (uint64_t i = kept.size(); i > 0; --i) {
    if (kept[i - 1]) return (i - 1) * kSectorBytes + SectorBytesOf(outcome.rec->done_bytes, i - 1);
  }
  return kept.empty() ? outcome.kept_bytes : 0;
}

std::string CrashEvent::ToString() const {
  std::string out = std::string(EventKindName(kind)) + " " + path;
  out += " offset=" + std::to_string(offset_bytes) + " length=" + std::to_string(length_bytes);
  if (kind == Kind::kTorn) {
    out += " kept=" + std::to_string(kept_bytes) + (out_of_order ? " (sectors out of order)" : "");
  }
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

UndoLog::UndoLog(uint64_t seed) : crash_rng_(seed ^ 0x9e3779b97f4a7c15ull) {}

UndoLog::~UndoLog() = default;

uint64_t UndoLog::uncovered_records() const noexcept {
  uint64_t total = 0;
  for (const auto& file : files_) total += file->records.size();
  return total;
}

Result<UndoLog::File*> UndoLog::FileFor(int fd, const char* path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return SyscallErrorStatus("fstat", path, errno);
  // Directories (fsync after create/rename) and devices are passed through untracked.
  if (!S_ISREG(st.st_mode)) return static_cast<File*>(nullptr);
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  if (auto it = files_by_inode_.find(key); it != files_by_inode_.end()) return it->second;
  assert(files_.size() < kTrackedFilesMax);
  const std::string proc_path = "/proc/self/fd/" + std::to_string(fd);
  auto file = std::make_unique<File>();
  file->dev = st.st_dev;
  file->ino = st.st_ino;
  file->path = path[0] != '\0' ? std::string(path) : proc_path;
  file->fd = open(proc_path.c_str(), O_RDWR | O_CLOEXEC);
  if (file->fd < 0) {
    return SyscallErrorStatus("open", proc_path + " (" + file->path + ")", errno,
                              "the FaultBackend needs a read-write descriptor for undo records");
  }
  File* raw = file.get();
  files_.push_back(std::move(file));
  files_by_inode_.emplace(key, raw);
  return raw;
}

Result<UndoLog::Record*> UndoLog::Capture(File* file, const IoRequest& req) {
  assert(file != nullptr);
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
  if (!changes_data && !grows) return static_cast<Record*>(nullptr);  // Nothing to undo.
  if (changes_data && rec.offset_bytes < rec.old_size_bytes) {
    rec.old_data.resize(std::min(rec.end_bytes(), rec.old_size_bytes) - rec.offset_bytes);
    DMALOG_RETURN_IF_ERROR(
        PreadAll(file->fd, file->path, rec.old_data.data(), rec.old_data.size(), rec.offset_bytes));
  }
  if (rec.is_write) rec.new_data.assign(req.buf, req.buf + req.length_bytes);
  rec.issue_seq = ++issue_seq_;
  file->records.push_back(std::move(rec));
  return &file->records.back();
}

void UndoLog::Complete(Record* rec, uint64_t done_bytes) {
  assert(rec != nullptr);
  if (rec->completed) return;
  rec->completed = true;
  rec->completion_seq = ++completion_seq_;
  if (rec->is_write) rec->done_bytes = done_bytes;
}

Status UndoLog::Tear(File* file, Record* rec, const uint8_t* data, uint64_t offset_bytes,
                     uint64_t kept_bytes) {
  assert(file != nullptr);
  if (kept_bytes > 0) {
    DMALOG_RETURN_IF_ERROR(PwriteAll(file->fd, file->path, data, kept_bytes, offset_bytes));
  }
  if (rec != nullptr) {
    rec->torn = true;
    rec->completed = true;
    rec->completion_seq = ++completion_seq_;
    rec->done_bytes = kept_bytes;
  }
  return Status::OK();
}

bool UndoLog::InFlightOverlaps(const File& file, uint64_t begin_bytes, uint64_t end_bytes) const {
  return std::any_of(file.records.begin(), file.records.end(), [&](const Record& r) {
    return !r.completed && r.offset_bytes < end_bytes && begin_bytes < r.end_bytes();
  });
}

Result<UndoLog::SyncPoint> UndoLog::BeginSync(File* file) {
  assert(file != nullptr);
  Result<uint64_t> size = FileSize(file->fd, file->path);
  if (!size.ok()) return size.status();
  return SyncPoint{completion_seq_, issue_seq_, *size};
}

// A sync succeeded: what completed before it was submitted (and, for
// kWriteFdatasync, its own write) is durable.
void UndoLog::Cover(File* file, const SyncPoint& sync, const Record* own) {
  uint64_t covered_end_bytes = file->durable_size_bytes;
  for (auto it = file->records.begin(); it != file->records.end();) {
    const Record& rec = *it;
    const bool covered =
        !rec.torn && rec.completed && (&rec == own || rec.completion_seq <= sync.completion_seq);
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
                  [&](const Record& r) { return r.issue_seq <= sync.issue_seq; });
  // With nothing older pending, the size seen at submission is exactly what the sync made durable.
  file->durable_size_bytes =
      older_uncovered ? covered_end_bytes : std::max(sync.size_bytes, covered_end_bytes);
}

// ---------------------------------------------------------------- Crash

Result<CrashReport> UndoLog::Restore(const CrashOptions& options) {
  assert(options.misdirect_probability >= 0.0 && options.misdirect_probability <= 1.0);
  CrashReport report;
  for (const auto& file : files_) {
    DMALOG_RETURN_IF_ERROR(RestoreFile(file.get(), options, &report));
  }
  DMALOG_RETURN_IF_ERROR(FlipBits(options, &report));
  return report;
}

Status UndoLog::RestoreFile(File* file, const CrashOptions& options, CrashReport* report) {
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
    const uint64_t kept_end = KeptEndBytes(outcomes.back());
    if (kept_end > 0) size = std::max(size, rec.offset_bytes + kept_end);
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

UndoLog::Outcome UndoLog::Decide(const Record& rec, const CrashOptions& options) {
  Outcome outcome;
  outcome.rec = &rec;
  if (!rec.is_write) return outcome;  // A fallocate vanishes whole.
  if (rec.torn) {
    outcome.kept_bytes = rec.done_bytes;
    return outcome;
  }
  const uint64_t sectors = (rec.done_bytes + kSectorBytes - 1) / kSectorBytes;
  if (options.tear_unsynced_writes && sectors > 0 && options.tear_out_of_order) {
    outcome.kept_sectors.resize(sectors);
    for (uint64_t i = 0; i < sectors; ++i) {
      outcome.kept_sectors[i] = (crash_rng_() & 1) != 0;
      if (outcome.kept_sectors[i]) outcome.kept_bytes += SectorBytesOf(rec.done_bytes, i);
    }
  } else if (options.tear_unsynced_writes && sectors > 0) {
    outcome.kept_bytes = std::min(Uniform(crash_rng_, 0, sectors) * kSectorBytes, rec.done_bytes);
  }
  if (options.misdirect_probability > 0.0 && rec.done_bytes > 0 &&
      std::uniform_real_distribution<double>(0.0, 1.0)(crash_rng_) <
          options.misdirect_probability) {
    outcome.misdirected = true;
    outcome.kept_bytes = 0;
    outcome.kept_sectors.clear();  // Nothing lands in place.
  }
  return outcome;
}

Status UndoLog::Apply(const File& file, const Outcome& outcome, uint64_t size_bytes,
                      const CrashOptions& options, CrashReport* report) {
  const Record& rec = *outcome.rec;
  CrashEvent event{
      CrashEvent::Kind::kDropped, file.path, rec.offset_bytes, rec.length_bytes, 0, 0, 0};
  const bool out_of_order = !outcome.kept_sectors.empty();
  if (outcome.kept_bytes > 0) {
    event.kind = CrashEvent::Kind::kTorn;
    event.kept_bytes = outcome.kept_bytes;
    event.out_of_order = out_of_order;
  }
  if (outcome.kept_bytes > 0 && !out_of_order) {
    DMALOG_RETURN_IF_ERROR(
        PwriteAll(file.fd, file.path, rec.new_data.data(), outcome.kept_bytes, rec.offset_bytes));
  }
  const uint64_t fill_begin = rec.offset_bytes + (out_of_order ? 0 : outcome.kept_bytes);
  const uint64_t fill_end = std::min(rec.offset_bytes + rec.attempted_bytes(), size_bytes);
  if (rec.is_write && options.fill != UnsyncedFill::kOldData && fill_begin < fill_end) {
    DMALOG_RETURN_IF_ERROR(FillRange(file.fd, file.path, fill_begin, fill_end - fill_begin,
                                     options.fill == UnsyncedFill::kGarbage, crash_rng_));
  }
  const uint64_t slots = size_bytes >= rec.done_bytes + kSectorBytes
                             ? (size_bytes - rec.done_bytes) / kSectorBytes
                             : 0;
  // Out of order: the range was filled whole above; the kept sectors land on it.
  for (uint64_t i = 0; i < outcome.kept_sectors.size(); ++i) {
    if (!outcome.kept_sectors[i]) continue;
    DMALOG_RETURN_IF_ERROR(PwriteAll(file.fd, file.path, rec.new_data.data() + i * kSectorBytes,
                                     SectorBytesOf(rec.done_bytes, i),
                                     rec.offset_bytes + i * kSectorBytes));
  }
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
Status UndoLog::FlipBits(const CrashOptions& options, CrashReport* report) {
  for (uint32_t i = 0; i < options.synced_bit_flips; ++i) {
    std::vector<std::pair<File*, uint64_t>> candidates;  // File, synced bytes.
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

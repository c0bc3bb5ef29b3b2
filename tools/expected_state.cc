#include "tools/expected_state.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "io/io_errors.h"

namespace dmalog::stress {

struct ExpectedState::Header {
  char magic[8];
  uint32_t format_version;
  uint32_t value_size_max;
  uint64_t key_count;
  uint64_t acknowledged;  // Atomic.
  uint64_t runs;          // Atomic.
  uint64_t relaxed;       // Atomic; 0 or 1.
};

namespace {

constexpr char kMagic[8] = {'D', 'M', 'A', 'L', 'O', 'G', 'E', 'S'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kSlotBytes = 2 * sizeof(uint64_t);
static_assert(sizeof(Slot) == kSlotBytes);

uint64_t MapBytes(uint64_t key_count) { return kHeaderBytes + key_count * kSlotBytes; }

// splitmix64: the value bytes' pseudo-random stream.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::atomic_ref<uint64_t> Word(uint64_t* p) { return std::atomic_ref<uint64_t>(*p); }

Status CheckSizes(uint64_t key_count, uint32_t value_size_max) {
  if (key_count == 0 || key_count > kKeysMax || key_count % kGroupKeys != 0) {
    return Status::InvalidArgument("expected state: key count " + std::to_string(key_count) +
                                   " must be a positive multiple of " + std::to_string(kGroupKeys) +
                                   " up to " + std::to_string(kKeysMax));
  }
  if (value_size_max < kValueSizeMin || value_size_max > kValueSizeMax) {
    return Status::InvalidArgument(
        "expected state: value_size_max " + std::to_string(value_size_max) + " must be in [" +
        std::to_string(kValueSizeMin) + ", " + std::to_string(kValueSizeMax) + "]");
  }
  return Status::OK();
}

// Maps `bytes` of `fd` (closed here) shared, read-write.
Result<void*> MapFile(int fd, const std::string& path, uint64_t bytes) {
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (map == MAP_FAILED) return io::SyscallErrorStatus("mmap", path, err);
  return map;
}

}  // namespace

std::string DescribeId(uint64_t id) {
  if (id == kNoValue) return "never written";
  return std::string(IsDelete(id) ? "delete v" : "put v") + std::to_string(VersionOf(id));
}

std::string KeyName(uint64_t key_index) {
  assert(key_index < kKeysMax);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "{%06llu}:%u",
                static_cast<unsigned long long>(key_index / kGroupKeys),
                static_cast<unsigned>(key_index % kGroupKeys));
  return buf;
}

std::optional<uint64_t> ParseKeyName(std::string_view key) {
  if (key.size() != 10 || key[0] != '{' || key[7] != '}' || key[8] != ':') return std::nullopt;
  uint64_t group = 0;
  auto [ptr, ec] = std::from_chars(key.data() + 1, key.data() + 7, group);
  if (ec != std::errc() || ptr != key.data() + 7) return std::nullopt;
  const int member = key[9] - '0';
  if (member < 0 || member >= static_cast<int>(kGroupKeys)) return std::nullopt;
  return group * kGroupKeys + static_cast<uint64_t>(member);
}

std::string ValueFor(uint64_t key_index, uint64_t version, uint32_t value_size_max) {
  std::string v = "v:" + KeyName(key_index) + ":" + std::to_string(version) + ":";
  assert(v.size() <= kValueSizeMin);
  uint64_t x = Mix(key_index * 0x100000001B3ull ^ Mix(version));
  const size_t length = std::max<size_t>(v.size(), x % (value_size_max + 1ull));
  const size_t prefix_bytes = v.size();
  v.resize(length);
  for (size_t i = prefix_bytes; i < length; ++i) {
    if ((i - prefix_bytes) % 8 == 0) x = Mix(x);
    v[i] = static_cast<char>('a' + (x >> (8 * ((i - prefix_bytes) % 8)) & 0xFF) % 26);
  }
  return v;
}

ExpectedState::ExpectedState(std::string path, void* map, uint64_t map_bytes)
    : path_(std::move(path)), map_(map), map_bytes_(map_bytes) {
  header_ = static_cast<Header*>(map_);
  key_count_ = header_->key_count;
  value_size_max_ = header_->value_size_max;
}

ExpectedState::~ExpectedState() { munmap(map_, map_bytes_); }

Result<std::unique_ptr<ExpectedState>> ExpectedState::Open(const std::string& path,
                                                           uint64_t key_count,
                                                           uint32_t value_size_max) {
  DMALOG_RETURN_IF_ERROR(CheckSizes(key_count, value_size_max));
  const uint64_t bytes = MapBytes(key_count);
  void* map = nullptr;
  bool fresh = true;
  if (path.empty()) {
    map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return io::SyscallErrorStatus("mmap", "(anonymous)", errno);
  } else {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return io::SyscallErrorStatus("open", path, errno, "check --expected_state");
    }
    struct stat st = {};
    if (fstat(fd, &st) != 0 || (st.st_size != 0 && static_cast<uint64_t>(st.st_size) != bytes)) {
      close(fd);
      return Status::InvalidArgument(
          "expected state " + path + " was made for another --keys or --value_size_max (" +
          std::to_string(st.st_size) + " bytes, want " + std::to_string(bytes) +
          "); pass the original flags, or remove it together with the database");
    }
    fresh = st.st_size == 0;
    if (fresh && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      const int err = errno;
      close(fd);
      return io::SyscallErrorStatus("ftruncate", path, err, "is the disk full?");
    }
    Result<void*> mapped = MapFile(fd, path, bytes);
    if (!mapped.ok()) return mapped.status();
    map = *mapped;
  }
  auto* header = static_cast<Header*>(map);
  if (fresh) {
    std::memcpy(header->magic, kMagic, sizeof(kMagic));
    header->format_version = kFormatVersion;
    header->value_size_max = value_size_max;
    header->key_count = key_count;
  } else if (std::memcmp(header->magic, kMagic, sizeof(kMagic)) != 0 ||
             header->format_version != kFormatVersion || header->key_count != key_count ||
             header->value_size_max != value_size_max) {
    munmap(map, bytes);
    return Status::InvalidArgument(
        "expected state " + path + " is not an expected-state file for --keys=" +
        std::to_string(key_count) + " --value_size_max=" + std::to_string(value_size_max) +
        "; pass the original flags, or remove it with the database");
  }
  return std::unique_ptr<ExpectedState>(new ExpectedState(path, map, bytes));
}

Result<std::unique_ptr<ExpectedState>> ExpectedState::OpenExisting(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return io::SyscallErrorStatus("open", path, errno,
                                  "run `dmalog stress` first, or pass --expected_state=PATH");
  }
  Header header = {};
  const ssize_t n = pread(fd, &header, sizeof(header), 0);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(header))) {
    return Status::Corruption("expected state " + path + " is shorter than its header");
  }
  return Open(path, header.key_count, header.value_size_max);
}

uint64_t* ExpectedState::SlotWords(uint64_t key_index) const {
  assert(key_index < key_count_);
  return reinterpret_cast<uint64_t*>(static_cast<char*>(map_) + kHeaderBytes +
                                     key_index * kSlotBytes);
}

Slot ExpectedState::Load(uint64_t key_index) const {
  uint64_t* w = SlotWords(key_index);
  // Pending first: a Commit between the loads then shows as committed ==
  // pending, never as a pending write that vanished.
  Slot s;
  s.pending = Word(w + 1).load(std::memory_order_acquire);
  s.committed = Word(w).load(std::memory_order_acquire);
  return s;
}

uint64_t ExpectedState::NextVersion(uint64_t key_index) const {
  const Slot s = Load(key_index);
  return std::max(VersionOf(s.committed), VersionOf(s.pending)) + 1;
}

void ExpectedState::MarkPending(uint64_t key_index, uint64_t id) {
  assert(id != kNoValue);
  Word(SlotWords(key_index) + 1).store(id, std::memory_order_release);
}

void ExpectedState::Commit(uint64_t key_index, uint64_t id) {
  uint64_t* w = SlotWords(key_index);
  Word(w).store(id, std::memory_order_release);
  Word(w + 1).store(kNoValue, std::memory_order_release);
}

uint64_t ExpectedState::acknowledged() const {
  return Word(&header_->acknowledged).load(std::memory_order_acquire);
}
void ExpectedState::AddAcknowledged(uint64_t n) {
  Word(&header_->acknowledged).fetch_add(n, std::memory_order_acq_rel);
}
uint64_t ExpectedState::StartRun() {
  return Word(&header_->runs).fetch_add(1, std::memory_order_acq_rel) + 1;
}
bool ExpectedState::relaxed() const {
  return Word(&header_->relaxed).load(std::memory_order_acquire) != 0;
}
void ExpectedState::SetRelaxed(bool relaxed) {
  Word(&header_->relaxed).store(relaxed ? 1 : 0, std::memory_order_release);
}

const char* VerdictName(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kLostWrite:
      return "acknowledged write lost";
    case Verdict::kResurrectedDelete:
      return "deleted key came back";
    case Verdict::kCorruptValue:
      return "corrupt value";
    case Verdict::kUnknownValue:
      return "value of a version never written";
  }
  return "?";
}

namespace {

// The version a stored value claims, if it is exactly ValueFor(key, version).
std::optional<uint64_t> DecodeVersion(uint64_t key_index, const std::string& value,
                                      uint32_t value_size_max) {
  const std::string prefix = "v:" + KeyName(key_index) + ":";
  if (value.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const char* begin = value.data() + prefix.size();
  const char* end = value.data() + value.size();
  uint64_t version = 0;
  auto [ptr, ec] = std::from_chars(begin, end, version);
  if (ec != std::errc() || ptr == end || *ptr != ':' || version == 0) return std::nullopt;
  if (value != ValueFor(key_index, version, value_size_max)) return std::nullopt;
  return version;
}

std::string Expectation(const Slot& slot) {
  std::string out = DescribeId(slot.committed) + " (committed)";
  out += slot.pending == kNoValue ? "; no write pending"
                                  : " or " + DescribeId(slot.pending) + " (pending)";
  return out;
}

bool Matches(uint64_t found, uint64_t expected) {
  if (found == kNoValue) return IsAbsentState(expected);
  return expected == found;  // A put's id has no delete bit.
}

}  // namespace

KeyCheck CheckKey(uint64_t key_index, const std::string* value, const Slot& slot,
                  uint32_t value_size_max, bool relaxed) {
  KeyCheck c;
  const std::string key = KeyName(key_index);
  if (value != nullptr) {
    std::optional<uint64_t> version = DecodeVersion(key_index, *value, value_size_max);
    if (!version) {
      c.verdict = Verdict::kCorruptValue;
      c.detail = "key " + key + ": expected " + Expectation(slot) + ", found a value of " +
                 std::to_string(value->size()) + " bytes that no write made: '" +
                 value->substr(0, 64) + (value->size() > 64 ? "...'" : "'");
      return c;
    }
    c.found_id = *version;
  }
  const uint64_t newest = std::max(VersionOf(slot.committed), VersionOf(slot.pending));
  if (relaxed && VersionOf(c.found_id) <= newest) return c;
  if (slot.pending != kNoValue && Matches(c.found_id, slot.pending)) {
    c.found_pending = true;
    return c;
  }
  if (Matches(c.found_id, slot.committed)) return c;
  const std::string found = c.found_id == kNoValue ? "absent" : DescribeId(c.found_id);
  if (VersionOf(c.found_id) > newest) {
    c.verdict = Verdict::kUnknownValue;
  } else if (c.found_id != kNoValue && IsDelete(slot.committed)) {
    c.verdict = Verdict::kResurrectedDelete;
  } else {
    c.verdict = Verdict::kLostWrite;
  }
  c.detail = "key " + key + ": expected " + Expectation(slot) + ", found " + found;
  return c;
}

}  // namespace dmalog::stress

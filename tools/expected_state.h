// ExpectedState: what `dmalog stress` knows the database must hold, kept so
// that it survives SIGKILL of the stress process at any instant (RocksDB's
// db_stress ExpectedState is the model).
//
// The state is a file mapped MAP_SHARED: a 4 KiB header, then one 16-byte
// slot per key, {committed value id, pending value id}. Stores go to the page
// cache, which outlives the process, so a kill leaves every store that was
// made. (A power cut does not: keep the file on a filesystem the cut spares,
// with --expected_state=PATH.)
//
// Value ids. A key's writes are numbered 1, 2, 3, ... (its versions); a value
// id is the version, with kDeleteBit set for a delete. Id 0 means "never
// written" in `committed` and "none" in `pending`. The bytes of a put are a
// pure function of (key, version, value_size_max) (ValueFor), so verification
// can decode which write a stored value came from and check every byte.
//
// Write protocol (one writer per key at a time; `dmalog stress` gives each
// thread its own key groups):
//   MarkPending(key, id)   before the write is submitted;
//   Commit(key, id)        once it is acknowledged: committed = id, then
//                          pending = 0 (both release stores).
// A kill between the two stores leaves pending == committed: still exact.
//
// Keys. Key i is "{GGGGGG}:M" with group G = i / kGroupKeys and member
// M = i % kGroupKeys: a group's keys share a hash tag, hence a shard, so a
// batch may hold any of them. Keys sort in index order.
//
// Thread-safety: slots and counters may be used from any thread (atomic
// accesses); Open/Create and the destructor from one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dmalog/status.h"

namespace dmalog::stress {

inline constexpr uint32_t kGroupKeys = 8;
inline constexpr uint64_t kKeysMax = 1ull << 22;
inline constexpr uint64_t kGroupsMax = kKeysMax / kGroupKeys;
static_assert(kGroupsMax <= 999999, "a group number fits the 6 digits of a key's hash tag");
static_assert(kGroupKeys <= 10, "a member is one digit, so keys sort in index order");
inline constexpr uint64_t kDeleteBit = 1ull << 63;
inline constexpr uint64_t kNoValue = 0;
inline constexpr uint32_t kValueSizeMin = 48;  // Room for the longest "v:<key>:<version>:".
inline constexpr uint32_t kValueSizeMax = 1u << 20;

inline uint64_t VersionOf(uint64_t id) { return id & ~kDeleteBit; }
inline bool IsDelete(uint64_t id) { return (id & kDeleteBit) != 0; }
// True when the key reads as absent in state `id` (never written or deleted).
inline bool IsAbsentState(uint64_t id) { return id == kNoValue || IsDelete(id); }
// "put v7", "delete v8" or "never written".
std::string DescribeId(uint64_t id);

std::string KeyName(uint64_t key_index);
// The index of a key KeyName made; nullopt for any other string.
std::optional<uint64_t> ParseKeyName(std::string_view key);
// The value a put of version `version` of key `key_index` writes.
std::string ValueFor(uint64_t key_index, uint64_t version, uint32_t value_size_max);

struct Slot {
  uint64_t committed = kNoValue;
  uint64_t pending = kNoValue;
};

class ExpectedState {
 public:
  // Opens the state file `path`, creating it (all keys never written) when
  // missing. An existing file must have been made with the same key count
  // and value_size_max (InvalidArgument naming both otherwise). An empty
  // `path` keeps the state in anonymous memory (tests).
  static Result<std::unique_ptr<ExpectedState>> Open(const std::string& path, uint64_t key_count,
                                                     uint32_t value_size_max);
  // Opens an existing state file with the sizes it was made with.
  static Result<std::unique_ptr<ExpectedState>> OpenExisting(const std::string& path);
  ~ExpectedState();
  ExpectedState(const ExpectedState&) = delete;
  ExpectedState& operator=(const ExpectedState&) = delete;

  uint64_t key_count() const noexcept { return key_count_; }
  uint32_t value_size_max() const noexcept { return value_size_max_; }
  const std::string& path() const noexcept { return path_; }

  Slot Load(uint64_t key_index) const;
  // The version the next write of the key gets (above every id it has had).
  uint64_t NextVersion(uint64_t key_index) const;
  void MarkPending(uint64_t key_index, uint64_t id);
  // The write `id` was acknowledged: committed = id, pending = none.
  void Commit(uint64_t key_index, uint64_t id);
  // Verification found the key in state `id`: committed = id, pending = none.
  void Resolve(uint64_t key_index, uint64_t id) { Commit(key_index, id); }

  // Acknowledged writes (batch entries count one each) over every run.
  uint64_t acknowledged() const;
  void AddAcknowledged(uint64_t n);
  // Starts a run and returns its number (1, 2, ...; seeds the op stream).
  uint64_t StartRun();
  // Set for a run that writes with sync = false: a crash may then lose any
  // acknowledged write, so verification only checks that each value is one
  // that was written. Cleared once the run closed cleanly or a verification
  // resolved every key.
  bool relaxed() const;
  void SetRelaxed(bool relaxed);

 private:
  struct Header;
  ExpectedState(std::string path, void* map, uint64_t map_bytes);
  uint64_t* SlotWords(uint64_t key_index) const;

  std::string path_;
  void* map_ = nullptr;  // Owned mapping of map_bytes_.
  uint64_t map_bytes_ = 0;
  Header* header_ = nullptr;  // In map_.
  uint64_t key_count_ = 0;
  uint32_t value_size_max_ = 0;
};

// What verification concluded about one key.
enum class Verdict : uint8_t {
  kOk,
  kLostWrite,          // An acknowledged write is missing (older state found).
  kResurrectedDelete,  // An acknowledged delete is undone: an older put is back.
  kCorruptValue,       // The value is not one ValueFor makes for this key.
  kUnknownValue,       // A well-formed value of a version never written.
};
const char* VerdictName(Verdict verdict) noexcept;

struct KeyCheck {
  Verdict verdict = Verdict::kOk;
  // The state found (a put's id, or kDeleteBit-less 0 for absent); valid
  // when the value decoded.
  uint64_t found_id = kNoValue;
  bool found_pending = false;  // Found the pending write applied.
  std::string detail;          // Set when verdict != kOk.
};

// Checks what the database holds for key `key_index` (`value` null when the
// key is absent; borrowed for the call) against `slot`. When `relaxed`, any
// value that was ever written is accepted.
KeyCheck CheckKey(uint64_t key_index, const std::string* value, const Slot& slot,
                  uint32_t value_size_max, bool relaxed);

}  // namespace dmalog::stress

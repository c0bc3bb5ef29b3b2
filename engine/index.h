// The per-shard in-memory index: an ordered map from key to where the key's
// newest record lives on disk.
//
// Memory is the index's budget, so keys are not std::strings: their bytes live
// in an append-only arena (a 2-byte length, then the bytes), and the B-tree
// (Abseil's btree_set, from Debian's libabsl-dev) holds 32-byte slots that
// refer to the arena by a 32-bit reference. Each slot also keeps the key's
// first 8 bytes as a big-endian number, so most comparisons in a search
// never touch the arena (a cache miss each): keys that differ in their first
// 8 bytes compare as two integers. Bytes per key = slot + B-tree node
// overhead + 2 + key bytes; index_test measures it. Erased keys leave
// their bytes in the arena (garbage_bytes()); a compaction of the shard
// rebuilds the index and drops them.
//
// Each shard's index is changed only by its executor, and read there, and
// also by blocking gets on other threads, which call Find() under the
// shard's latch (engine/caller_reads.h): so Find() must stay a pure read
// (no cache or statistics it updates), and the Shard must never replace
// its Index while it is open (a compaction that rebuilds one must swap it
// under that latch).
#pragma once

#include <absl/container/btree_set.h>
#include <absl/functional/function_ref.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace dmalog::engine {

// Where a key's newest record lives.
struct IndexEntry {
  uint32_t segment_id = 0;
  uint32_t offset_bytes = 0;  // Of the record header within the segment.
  uint32_t record_bytes = 0;  // Encoded bytes, header included.
  uint64_t sequence = 0;
  bool operator==(const IndexEntry&) const = default;
};

class Index {
  struct Slot;
  struct Probe;
  struct Compare;
  template <typename T>
  class CountingAllocator;
  // absl::btree_set with 1 KiB nodes instead of its fixed 256 bytes (7
  // slots of 32 bytes, so a deep tree and a cache miss per level): ~31 slots
  // per node. dmalog_bench --sync=1 --threads=2 --inflight=256 --num=300000:
  // 348-375 K ops/s with 256-byte nodes, 385-424 K with 1 KiB, 346-386 K
  // with 2-4 KiB; bytes per key 47.5 -> 40.5 (index_test). The parameters
  // are Abseil's own (container_internal), as btree_set itself uses them.
  static constexpr int kTreeNodeBytes = 1024;
  using Tree = absl::container_internal::btree_set_container<
      absl::container_internal::btree<absl::container_internal::set_params<
          Slot, Compare, CountingAllocator<Slot>, kTreeNodeBytes, /*IsMulti=*/false>>>;

 public:
  // Key bytes the arena holds before it refuses (kArenaBlockBytes x blocks).
  static constexpr uint32_t kArenaBlockBytes = 1u << 20;
  static constexpr uint32_t kArenaBlocksMax = 4096;

  Index();
  struct SlotSizeCheck;
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // Maps `key` to `entry` unless the key already maps to a newer sequence.
  // Returns the entry it replaced, if any.
  std::optional<IndexEntry> Put(std::string_view key, const IndexEntry& entry);
  // Removes `key` if its entry is older than `sequence`; returns what it removed.
  std::optional<IndexEntry> Erase(std::string_view key, uint64_t sequence);
  std::optional<IndexEntry> Find(std::string_view key) const;

  size_t size() const noexcept;
  // B-tree nodes plus arena bytes in use.
  size_t memory_bytes() const noexcept;
  size_t key_bytes() const noexcept { return live_key_bytes_; }
  size_t garbage_bytes() const noexcept { return garbage_bytes_; }
  // (memory_bytes() - key_bytes()) / size(): the index's cost per key beyond
  // the key itself.
  double overhead_bytes_per_key() const noexcept;

  // Visits keys in order from the first key >= `from`; `visit` returns false
  // to stop. The views are valid until the index next changes.
  void ForEachFrom(
      std::string_view from,
      absl::FunctionRef<bool(std::string_view key, const IndexEntry& entry)> visit) const;

 private:
  std::string_view KeyOf(uint32_t ref) const noexcept;
  uint32_t StoreKey(std::string_view key);

  struct ArenaState {
    std::vector<std::unique_ptr<char[]>> blocks;
    uint32_t used_in_last_bytes = kArenaBlockBytes;  // Forces a first block.
  };

  ArenaState arena_;
  size_t tree_bytes_ = 0;  // Maintained by CountingAllocator.
  size_t live_key_bytes_ = 0;
  size_t garbage_bytes_ = 0;
  std::unique_ptr<Tree> tree_;
};

// The key (the ordering) is fixed at insertion; the location is `mutable` so
// an overwrite updates it in place inside the const set element.
struct Index::Slot {
  uint64_t prefix;   // KeyPrefix(key): the first 8 bytes, big-endian, zero-padded.
  uint32_t key_ref;  // Block index << 20 | offset within the block; see KeyOf.
  mutable uint32_t segment_id;
  mutable uint32_t offset_bytes;
  mutable uint32_t record_bytes;
  mutable uint64_t sequence;
};

}  // namespace dmalog::engine

#include "engine/index.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>

namespace dmalog::engine {

static_assert(Index::kArenaBlockBytes == (1u << 20), "key_ref keeps 20 bits of offset");
static_assert(uint64_t{Index::kArenaBlocksMax} << 20 <= (uint64_t{1} << 32), "key_ref is 32 bits");

namespace {
constexpr uint32_t kOffsetBits = 20;
constexpr uint32_t kOffsetMask = (1u << kOffsetBits) - 1;
constexpr uint32_t kKeyLengthBytes = 2;

// a < b in the order of std::string_view (unsigned bytes, then length),
// inline and eight bytes at a time: the B-tree's comparisons are most of
// an insert's cost, and memcmp is a call that short keys do not amortise.
static_assert(std::endian::native == std::endian::little, "KeyLess byte-swaps to big-endian");
inline bool KeyLess(std::string_view a, std::string_view b) noexcept {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, a.data() + i, sizeof(x));
    std::memcpy(&y, b.data() + i, sizeof(y));
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y);
  }
  for (; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<uint8_t>(a[i]) < static_cast<uint8_t>(b[i]);
  }
  return a.size() < b.size();
}

// The key's first 8 bytes as a big-endian number, zero-padded: if the
// prefixes of two keys differ, they order the keys as KeyLess does.
inline uint64_t KeyPrefix(std::string_view key) noexcept {
  uint64_t x = 0;
  std::memcpy(&x, key.data(), std::min(key.size(), sizeof(x)));
  return __builtin_bswap64(x);
}
}  // namespace

// A key being looked up, with its prefix computed once per search.
struct Index::Probe {
  explicit Probe(std::string_view k) : prefix(KeyPrefix(k)), key(k) {}
  uint64_t prefix;
  std::string_view key;
};

// Counts the bytes the B-tree allocates, so memory_bytes() is measured, not
// estimated.
template <typename T>
class Index::CountingAllocator {
 public:
  using value_type = T;
  explicit CountingAllocator(size_t* counter) noexcept : counter_(counter) {}
  template <typename U>
  CountingAllocator(const CountingAllocator<U>& other) noexcept  // NOLINT
      : counter_(other.counter_) {}
  T* allocate(size_t n) {
    *counter_ += n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    *counter_ -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const CountingAllocator<U>& other) const noexcept {
    return counter_ == other.counter_;
  }
  size_t* counter_;
};

// With assertions on (our builds keep them), Abseil wraps a comparator in
// checked_compare, which asserts that every key is equivalent to itself and
// compares each pair both ways: for a slot that is a trip to the key arena
// and a cache miss per comparison. It was 20% of an executor's CPU in
// readrandom (perf, 16 threads, 800 K keys). The opt-out base keeps the
// tree's own structural assertions; index_test checks the order.
struct Index::Compare : absl::container_internal::BtreeTestOnlyCheckedCompareOptOutBase {
  using is_transparent = void;
  const Index* index;
  // Equal prefixes (keys alike in their first 8 bytes, or shorter than 8
  // bytes) fall back to the bytes in the arena.
  bool operator()(const Slot& a, const Slot& b) const noexcept {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return KeyLess(index->KeyOf(a.key_ref), index->KeyOf(b.key_ref));
  }
  bool operator()(const Slot& a, const Probe& b) const noexcept {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return KeyLess(index->KeyOf(a.key_ref), b.key);
  }
  bool operator()(const Probe& a, const Slot& b) const noexcept {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return KeyLess(a.key, index->KeyOf(b.key_ref));
  }
};

struct Index::SlotSizeCheck {
  static_assert(sizeof(Slot) == 32, "the slot is the index's per-key cost");
};

Index::Index()
    : tree_(std::make_unique<Tree>(Compare{{}, this}, CountingAllocator<Slot>(&tree_bytes_))) {}
Index::~Index() = default;

std::string_view Index::KeyOf(uint32_t ref) const noexcept {
  const char* p = arena_.blocks[ref >> kOffsetBits].get() + (ref & kOffsetMask);
  uint16_t len;
  std::memcpy(&len, p, sizeof(len));
  return std::string_view(p + kKeyLengthBytes, len);
}

uint32_t Index::StoreKey(std::string_view key) {
  assert(key.size() <= std::numeric_limits<uint16_t>::max());
  const uint32_t need = kKeyLengthBytes + static_cast<uint32_t>(key.size());
  if (arena_.used_in_last_bytes + need > kArenaBlockBytes) {
    // Running out of 4 GiB of key bytes in one shard is a programming limit,
    // not a user error: shards are sized far below it.
    assert(arena_.blocks.size() < kArenaBlocksMax && "index key arena is full");
    if (arena_.blocks.size() >= kArenaBlocksMax) std::abort();
    // The tail of the last block is wasted; count it as garbage.
    if (!arena_.blocks.empty()) garbage_bytes_ += kArenaBlockBytes - arena_.used_in_last_bytes;
    arena_.blocks.push_back(std::make_unique<char[]>(kArenaBlockBytes));
    arena_.used_in_last_bytes = 0;
  }
  const uint32_t block = static_cast<uint32_t>(arena_.blocks.size() - 1);
  char* p = arena_.blocks.back().get() + arena_.used_in_last_bytes;
  const uint16_t len = static_cast<uint16_t>(key.size());
  std::memcpy(p, &len, sizeof(len));
  std::memcpy(p + kKeyLengthBytes, key.data(), key.size());
  const uint32_t ref = (block << kOffsetBits) | arena_.used_in_last_bytes;
  arena_.used_in_last_bytes += need;
  live_key_bytes_ += need;
  return ref;
}

std::optional<IndexEntry> Index::Put(std::string_view key, const IndexEntry& entry) {
  // One traversal: lower_bound finds the key or the place to insert it.
  const Probe probe(key);
  auto it = tree_->lower_bound(probe);
  if (it != tree_->end() && it->prefix == probe.prefix && KeyOf(it->key_ref) == key) {
    IndexEntry old{it->segment_id, it->offset_bytes, it->record_bytes, it->sequence};
    if (old.sequence > entry.sequence) return std::nullopt;  // Already newer.
    const Slot& slot = *it;  // Location fields are mutable; the key stays.
    slot.segment_id = entry.segment_id;
    slot.offset_bytes = entry.offset_bytes;
    slot.record_bytes = entry.record_bytes;
    slot.sequence = entry.sequence;
    return old;
  }
  const uint32_t ref = StoreKey(key);
  tree_->insert(it, Slot{probe.prefix, ref, entry.segment_id, entry.offset_bytes,
                         entry.record_bytes, entry.sequence});
  return std::nullopt;
}

std::optional<IndexEntry> Index::Erase(std::string_view key, uint64_t sequence) {
  auto it = tree_->find(Probe(key));
  if (it == tree_->end() || it->sequence > sequence) return std::nullopt;
  IndexEntry old{it->segment_id, it->offset_bytes, it->record_bytes, it->sequence};
  const size_t stored = kKeyLengthBytes + key.size();
  tree_->erase(it);
  live_key_bytes_ -= stored;
  garbage_bytes_ += stored;
  return old;
}

std::optional<IndexEntry> Index::Find(std::string_view key) const {
  auto it = tree_->find(Probe(key));
  if (it == tree_->end()) return std::nullopt;
  return IndexEntry{it->segment_id, it->offset_bytes, it->record_bytes, it->sequence};
}

size_t Index::size() const noexcept { return tree_->size(); }

size_t Index::memory_bytes() const noexcept {
  return tree_bytes_ + arena_.blocks.size() * size_t{kArenaBlockBytes};
}

double Index::overhead_bytes_per_key() const noexcept {
  if (tree_->empty()) return 0;
  // Charge the tree and the arena's length prefixes; not the unused tail of
  // the arena's last block, which is a fixed cost, not a per-key one.
  const size_t prefixes = tree_->size() * kKeyLengthBytes;
  return static_cast<double>(tree_bytes_ + prefixes + garbage_bytes_) /
         static_cast<double>(tree_->size());
}

void Index::ForEachFrom(
    std::string_view from,
    absl::FunctionRef<bool(std::string_view key, const IndexEntry& entry)> visit) const {
  for (auto it = tree_->lower_bound(Probe(from)); it != tree_->end(); ++it) {
    const IndexEntry entry{it->segment_id, it->offset_bytes, it->record_bytes, it->sequence};
    if (!visit(KeyOf(it->key_ref), entry)) return;
  }
}

}  // namespace dmalog::engine

#include "engine/index.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <string>

namespace dmalog::engine {
namespace {

IndexEntry At(uint32_t segment, uint32_t offset, uint64_t seq) {
  return IndexEntry{segment, offset, 100, seq};
}

TEST(IndexTest, PutFindEraseRespectSequence) {
  Index index;
  EXPECT_FALSE(index.Put("a", At(1, 0, 5)).has_value());
  auto old = index.Put("a", At(1, 100, 6));
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->offset_bytes, 0u);
  // An older record (e.g. replayed from an earlier segment) does not win.
  EXPECT_FALSE(index.Put("a", At(0, 50, 3)).has_value());
  EXPECT_EQ(index.Find("a")->offset_bytes, 100u);
  EXPECT_FALSE(index.Erase("a", 4).has_value());  // Older delete: ignored.
  EXPECT_TRUE(index.Erase("a", 7).has_value());
  EXPECT_FALSE(index.Find("a").has_value());
  EXPECT_EQ(index.size(), 0u);
}

TEST(IndexTest, MatchesOrderedModel) {
  Index index;
  std::map<std::string, IndexEntry> model;
  std::mt19937_64 rng(1);
  for (uint64_t seq = 1; seq < 20000; ++seq) {
    std::string key = "k" + std::to_string(rng() % 3000);
    if (rng() % 4 == 0) {
      index.Erase(key, seq).reset();
      model.erase(key);
    } else {
      IndexEntry e = At(static_cast<uint32_t>(seq % 7), static_cast<uint32_t>(seq), seq);
      index.Put(key, e).reset();
      model[key] = e;
    }
  }
  ASSERT_EQ(index.size(), model.size());
  auto it = model.lower_bound("k2");
  index.ForEachFrom("k2", [&](std::string_view key, const IndexEntry& entry) {
    EXPECT_NE(it, model.end());
    if (it == model.end()) return false;
    EXPECT_EQ(key, it->first);
    EXPECT_EQ(entry, it->second);
    ++it;
    return true;
  });
  EXPECT_EQ(it, model.end());
}

// Binary keys of every length around the 8-byte comparison stride, with
// bytes above 0x7f and prefixes of one another, sort as std::string does.
TEST(IndexTest, BinaryKeysSortAsStdString) {
  Index index;
  std::map<std::string, IndexEntry> model;
  std::mt19937_64 rng(7);
  constexpr uint32_t kKeys = 5000;
  constexpr uint32_t kLengthMax = 24;
  const char alphabet[] = {'\x00', '\x01', 'a', 'b', '\x7f', '\x80', '\xfe', '\xff'};
  for (uint64_t seq = 1; seq <= kKeys; ++seq) {
    std::string key(rng() % (kLengthMax + 1), '\0');
    for (char& c : key) c = alphabet[rng() % sizeof(alphabet)];
    const IndexEntry e = At(1, static_cast<uint32_t>(seq), seq);
    index.Put(key, e).reset();
    model[key] = e;
  }
  ASSERT_EQ(index.size(), model.size());
  auto it = model.begin();
  index.ForEachFrom("", [&](std::string_view key, const IndexEntry& entry) {
    EXPECT_NE(it, model.end());
    if (it == model.end()) return false;
    EXPECT_EQ(key, it->first);
    EXPECT_EQ(entry, it->second);
    ++it;
    return true;
  });
  EXPECT_EQ(it, model.end());
  for (const auto& [key, entry] : model) EXPECT_EQ(index.Find(key), entry);
}

// The target: at most 48 bytes per key beyond the key's own bytes.
// Bitcask's keydir costs about 91 bytes plus the key.
TEST(IndexTest, OverheadPerKeyIsAtMost48Bytes) {
  Index index;
  constexpr int kKeys = 300'000;
  char key[17];
  for (int i = 0; i < kKeys; ++i) {
    std::snprintf(key, sizeof(key), "%016x", static_cast<unsigned>(i * 2654435761u));
    index.Put(std::string_view(key, 16), At(1, static_cast<uint32_t>(i), i + 1)).reset();
  }
  const double overhead = index.overhead_bytes_per_key();
  std::printf("index: %zu keys, %.1f bytes per key + key bytes (16 B keys, random order)\n",
              index.size(), overhead);
  EXPECT_LE(overhead, 48.0);
  EXPECT_GT(overhead, 32.0);  // A slot alone is 32 bytes: the measure is real.
}

}  // namespace
}  // namespace dmalog::engine

// The per-shard index without the device: what a get and a put cost the
// shard's executor before any I/O. Keys are made as db_bench makes them (8
// big-endian bytes of a random number, then '0' padding to 16 bytes), in
// random order, as in readrandom and fillrandom.
//
//   find_random/N:   Index::Find of a random present key, N keys indexed.
//   put_random/N:    Index::Put of N random new keys into an empty index
//                    (the figure is per key).
//   ./build/index_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/index.h"

namespace dmalog::bench {
namespace {

constexpr size_t kKeyBytes = 16;
constexpr uint64_t kSeed = 301;

std::string DbBenchKey(uint64_t n) {
  std::string key(kKeyBytes, '0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(n >> (56 - 8 * i));
  return key;
}

std::vector<std::string> RandomKeys(size_t count) {
  std::mt19937_64 rng(kSeed);
  std::vector<std::string> keys;
  keys.reserve(count);
  for (size_t i = 0; i < count; ++i) keys.push_back(DbBenchKey(rng()));
  return keys;
}

engine::IndexEntry EntryFor(size_t i) {
  return engine::IndexEntry{static_cast<uint32_t>(i >> 16), static_cast<uint32_t>(i & 0xffff) * 128,
                            128, i + 1};
}

void BM_FindRandom(benchmark::State& state) {
  const auto keys = RandomKeys(static_cast<size_t>(state.range(0)));
  engine::Index index;
  for (size_t i = 0; i < keys.size(); ++i)
    benchmark::DoNotOptimize(index.Put(keys[i], EntryFor(i)));
  std::mt19937_64 rng(kSeed + 1);
  size_t found = 0;
  for (auto _ : state) {
    const auto entry = index.Find(keys[rng() % keys.size()]);
    found += entry.has_value();
    benchmark::DoNotOptimize(entry);
  }
  if (found != static_cast<size_t>(state.iterations()))
    state.SkipWithError("a present key was not found");
  state.counters["bytes_per_key"] = index.overhead_bytes_per_key();
}
BENCHMARK(BM_FindRandom)->Name("find_random")->Arg(10'000)->Arg(400'000)->Arg(4'000'000);

void BM_PutRandom(benchmark::State& state) {
  const auto keys = RandomKeys(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    engine::Index index;
    for (size_t i = 0; i < keys.size(); ++i)
      benchmark::DoNotOptimize(index.Put(keys[i], EntryFor(i)));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PutRandom)->Name("put_random")->Arg(400'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dmalog::bench

BENCHMARK_MAIN();

// Simulated power loss through io::FaultBackend (tests/powerloss/powerloss_util.h).
//
//   ctest -L powerloss                                 # 1000 seeds (CI)
//   build/powerloss_test --gtest_filter=PowerLoss.Seeds --seeds=20000 --first_seed=1
//   build/powerloss_test --gtest_filter=PowerLoss.Seeds --seed=1234   # one seed
//   (or DMALOG_POWERLOSS_SEEDS / DMALOG_POWERLOSS_FIRST_SEED / DMALOG_POWERLOSS_SEED)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/powerloss/powerloss_util.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

constexpr uint64_t kSeedsDefault = 1000;
constexpr uint64_t kNoSyncSeeds = 20;

uint64_t Flag(const std::string& name, const char* env, uint64_t fallback) {
  const std::string prefix = "--" + name + "=";
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    if (arg.rfind(prefix, 0) == 0) return std::strtoull(arg.c_str() + prefix.size(), nullptr, 10);
  }
  const char* value = std::getenv(env);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

std::string Reproduce(uint64_t seed) {
  return std::string(DMALOG_TEST_DATA_DIR) +
         "/../powerloss_test --gtest_filter=PowerLoss.Seeds --seed=" + std::to_string(seed);
}

TEST(PowerLoss, Seeds) {
  const uint64_t one = Flag("seed", "DMALOG_POWERLOSS_SEED", 0);
  const uint64_t first = one != 0 ? one : Flag("first_seed", "DMALOG_POWERLOSS_FIRST_SEED", 1);
  const uint64_t seeds = one != 0 ? 1 : Flag("seeds", "DMALOG_POWERLOSS_SEEDS", kSeedsDefault);
  TestDir dir;
  uint64_t acknowledged = 0, keys = 0, refused = 0, failed = 0;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    const PowerLossResult r = RunPowerLossSeed(seed, PowerLossConfig{}, dir.path().string());
    acknowledged += r.acknowledged;
    keys += r.keys_checked;
    refused += r.open_refused ? 1 : 0;
    if (!r.failure.empty()) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << " failed: " << r.failure << "\n  scenario: " << r.scenario
                    << "\n  reproduce: " << Reproduce(seed);
    }
  }
  std::printf(
      "powerloss: seeds %llu (from %llu), acknowledged writes %llu, keys checked %llu, "
      "opens refused for damaged synced data %llu, failed seeds %llu\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(acknowledged), static_cast<unsigned long long>(keys),
      static_cast<unsigned long long>(refused), static_cast<unsigned long long>(failed));
  EXPECT_GT(acknowledged, 0u);
}

// The suite can see loss: with every fdatasync skipped (a test-only
// "build" that never syncs), acknowledged writes must be reported lost.
TEST(PowerLoss, SkippedFdatasyncIsCaught) {
  TestDir dir;
  PowerLossConfig config;
  config.skip_fdatasync = true;
  config.allow_damage_variants = false;
  uint64_t seeds_with_loss = 0, lost = 0;
  for (uint64_t seed = 1; seed <= kNoSyncSeeds; ++seed) {
    const PowerLossResult r = RunPowerLossSeed(seed, config, dir.path().string());
    lost += r.lost;
    seeds_with_loss += r.failure.empty() ? 0 : 1;
  }
  std::printf(
      "powerloss (fdatasync skipped): %llu of %llu seeds lost acknowledged data (%llu "
      "acknowledged writes lost)\n",
      static_cast<unsigned long long>(seeds_with_loss),
      static_cast<unsigned long long>(kNoSyncSeeds), static_cast<unsigned long long>(lost));
  EXPECT_GT(seeds_with_loss, 0u);
  EXPECT_GT(lost, 0u);
}

}  // namespace
}  // namespace dmalog::testing

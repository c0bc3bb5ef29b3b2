#include "tests/powerloss/powerloss_util.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "engine/engine_hooks.h"
#include "io/fault_backend.h"
#include "scheduler/executor.h"
#include "tests/nosync_backend.h"
#include "tools/expected_state.cc"  // NOLINT: the stress tool's expected state and checks.

namespace dmalog::testing {
namespace {

constexpr uint64_t kSegmentBytes = 4u << 20;
constexpr uint32_t kWriterThreads = 4;
constexpr uint64_t kOpsPerWriterMin = 30;
constexpr uint64_t kOpsPerWriterMax = 90;
constexpr uint64_t kKeys = 256;
constexpr uint32_t kValueSizeMax = 200;
constexpr uint32_t kBatchPercent = 15;
constexpr uint32_t kDeletePercent = 20;
constexpr uint32_t kShardsMax = 2;
static_assert(kKeys % stress::kGroupKeys == 0 && kKeys / stress::kGroupKeys >= kWriterThreads);

// Each shard's FaultBackend (owned by the engine), captured at open.
class Backends {
 public:
  engine::EngineHooks Hooks(uint64_t seed, bool skip_fdatasync) {
    engine::EngineHooks hooks;
    hooks.wrap_backend = [this, seed, skip_fdatasync](std::unique_ptr<io::Backend> inner) {
      const uint32_t shard = sched::Executor::Current()->shard();
      auto fault = std::make_unique<io::FaultBackend>(
          std::move(inner), io::FaultBackend::Options{seed * 1000003 + shard});
      {
        std::lock_guard lock(mu_);
        if (by_shard_.size() <= shard) by_shard_.resize(shard + 1, nullptr);
        by_shard_[shard] = fault.get();
      }
      std::unique_ptr<io::Backend> out = std::move(fault);
      if (skip_fdatasync) out = std::make_unique<NoSyncBackend>(std::move(out));
      return out;
    };
    return hooks;
  }

  // Simulates power loss on shard `shard`, on its executor thread.
  Result<io::CrashReport> Crash(Engine& db, uint32_t shard, const io::CrashOptions& options) {
    io::FaultBackend* fb = nullptr;
    {
      std::lock_guard lock(mu_);
      if (shard < by_shard_.size()) fb = by_shard_[shard];
    }
    if (fb == nullptr) return Status::InvalidArgument("no FaultBackend for the shard");
    auto done = std::make_shared<std::promise<Result<io::CrashReport>>>();
    std::future<Result<io::CrashReport>> report = done->get_future();
    auto task = [](io::FaultBackend* b, io::CrashOptions o,
                   std::shared_ptr<std::promise<Result<io::CrashReport>>> d) -> Task<void> {
      d->set_value(b->SimulateCrash(o));
      co_return;
    };
    DMALOG_RETURN_IF_ERROR(db.Spawn(shard, task(fb, options, done)));
    return report.get();
  }

 private:
  std::mutex mu_;
  std::vector<io::FaultBackend*> by_shard_;  // Not owned.
};

struct Scenario {
  uint32_t shards = 1;
  uint64_t ops_per_writer = 0;
  uint64_t crash_after_acks = 0;
  io::CrashOptions crash;
  std::string ToString() const {
    static const char* kFill[] = {"old", "zeros", "garbage"};
    return "shards=" + std::to_string(shards) + " ops/writer=" + std::to_string(ops_per_writer) +
           " crash_after_acks=" + std::to_string(crash_after_acks) +
           " tear=" + std::to_string(crash.tear_unsynced_writes) +
           " out_of_order=" + std::to_string(crash.tear_out_of_order) +
           " fill=" + kFill[static_cast<int>(crash.fill)] +
           " keep_size=" + std::to_string(crash.keep_unsynced_size) +
           " misdirect=" + std::to_string(crash.misdirect_probability) +
           " bit_flips=" + std::to_string(crash.synced_bit_flips);
  }
};

Scenario MakeScenario(uint64_t seed, const PowerLossConfig& config) {
  std::mt19937_64 rng(seed);
  Scenario s;
  s.shards = 1 + static_cast<uint32_t>(rng() % kShardsMax);
  s.ops_per_writer = kOpsPerWriterMin + rng() % (kOpsPerWriterMax - kOpsPerWriterMin + 1);
  s.crash_after_acks = rng() % (s.ops_per_writer * kWriterThreads + 1);
  s.crash.tear_unsynced_writes = rng() % 4 != 0;
  // Not drawn from rng, so that every other choice of a seed stays as it was.
  s.crash.tear_out_of_order = s.crash.tear_unsynced_writes && seed % 2 == 1;
  s.crash.fill = static_cast<io::UnsyncedFill>(rng() % 3);
  s.crash.keep_unsynced_size = rng() % 2 == 0;
  const uint64_t variant = rng() % 10;
  if (config.allow_damage_variants && variant == 0) s.crash.synced_bit_flips = 1 + rng() % 3;
  if (config.allow_damage_variants && variant == 1) s.crash.misdirect_probability = 0.5;
  return s;
}

// One writer thread: single-key puts/deletes and batches on its own groups.
class Writer {
 public:
  Writer(Engine* db, stress::ExpectedState* state, std::atomic<uint64_t>* acked, uint64_t seed,
         uint32_t t)
      : db_(db), state_(state), acked_(acked), rng_(seed * 7919 + t), t_(t) {}

  void Run(uint64_t ops) {
    const uint64_t groups = state_->key_count() / stress::kGroupKeys;
    const uint64_t owned = (groups - t_ + kWriterThreads - 1) / kWriterThreads;
    for (uint64_t op = 0; op < ops; ++op) {
      const uint64_t group = t_ + kWriterThreads * (rng_() % owned);
      Status s = rng_() % 100 < kBatchPercent ? Batch(group) : Single(group);
      if (!s.ok()) return;  // The crash: every later write fails too.
    }
  }

 private:
  uint64_t NextId(uint64_t index) {
    const uint64_t v = state_->NextVersion(index);
    return rng_() % 100 < kDeletePercent ? v | stress::kDeleteBit : v;
  }

  Status Single(uint64_t group) {
    const uint64_t index = group * stress::kGroupKeys + rng_() % stress::kGroupKeys;
    const uint64_t id = NextId(index);
    const std::string key = stress::KeyName(index);
    state_->MarkPending(index, id);
    DMALOG_RETURN_IF_ERROR(
        stress::IsDelete(id)
            ? db_->Delete({}, key)
            : db_->Put({}, key, stress::ValueFor(index, id, state_->value_size_max())));
    state_->Commit(index, id);
    acked_->fetch_add(1);
    return Status::OK();
  }

  Status Batch(uint64_t group) {
    const uint32_t n = 2 + static_cast<uint32_t>(rng_() % (stress::kGroupKeys - 1));
    const uint64_t first = rng_() % stress::kGroupKeys;
    uint64_t ids[stress::kGroupKeys];
    WriteBatch batch;
    for (uint32_t k = 0; k < n; ++k) {
      const uint64_t index = group * stress::kGroupKeys + (first + k) % stress::kGroupKeys;
      ids[k] = NextId(index);
      const std::string key = stress::KeyName(index);
      DMALOG_RETURN_IF_ERROR(
          stress::IsDelete(ids[k])
              ? batch.Delete(key)
              : batch.Put(key, stress::ValueFor(index, ids[k], state_->value_size_max())));
    }
    for (uint32_t k = 0; k < n; ++k) {
      state_->MarkPending(group * stress::kGroupKeys + (first + k) % stress::kGroupKeys, ids[k]);
    }
    DMALOG_RETURN_IF_ERROR(db_->Write({}, batch));
    for (uint32_t k = 0; k < n; ++k) {
      state_->Commit(group * stress::kGroupKeys + (first + k) % stress::kGroupKeys, ids[k]);
    }
    acked_->fetch_add(n);
    return Status::OK();
  }

  Engine* const db_;
  stress::ExpectedState* const state_;
  std::atomic<uint64_t>* const acked_;
  std::mt19937_64 rng_;
  const uint32_t t_;
};

Options DbOptions(const std::string& path, uint32_t shards) {
  Options o;
  o.db_path = path;
  o.shard_count = shards;
  o.segment_size_bytes = kSegmentBytes;
  return o;
}

// Writes, crashes every shard, and stops the dead engine. The failure, if any.
std::string WriteAndCrash(const Scenario& s, uint64_t seed, const PowerLossConfig& config,
                          const std::string& path, stress::ExpectedState* state,
                          uint64_t* acknowledged) {
  Backends backends;
  Result<std::unique_ptr<Engine>> db =
      engine::OpenEngine(DbOptions(path, s.shards), backends.Hooks(seed, config.skip_fdatasync));
  if (!db.ok()) return "open before the crash: " + db.status().ToString();
  std::atomic<uint64_t> acked{0};
  std::vector<std::unique_ptr<Writer>> writers;
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kWriterThreads; ++t) {
    writers.push_back(std::make_unique<Writer>(db->get(), state, &acked, seed, t));
  }
  // Started once `writers` no longer grows (a push_back may move its elements).
  for (uint32_t t = 0; t < kWriterThreads; ++t) {
    threads.emplace_back([w = writers[t].get(), &s] { w->Run(s.ops_per_writer); });
  }
  // Bounded wait for the crash point (the writers may all finish first).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (acked.load() < s.crash_after_acks && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  std::string failure;
  for (uint32_t shard = 0; shard < s.shards; ++shard) {
    Result<io::CrashReport> report = backends.Crash(**db, shard, s.crash);
    if (!report.ok() && failure.empty()) failure = "SimulateCrash: " + report.status().ToString();
  }
  for (std::thread& t : threads) t.join();
  // Every I/O fails after the crash, so Close reports errors: expected.
  (*db)->Close().IgnoreError();
  *acknowledged = acked.load();
  return failure;
}

bool NamesSegmentAndOffset(const Status& s) {
  const std::string m(s.message());
  return m.find("segment") != std::string::npos && m.find("offset") != std::string::npos;
}

// Reopens without faults and checks every key against `state`.
void Check(const Scenario& s, const std::string& path, const stress::ExpectedState& state,
           PowerLossResult* r) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(DbOptions(path, s.shards));
  if (!db.ok()) {
    const bool damaged = s.crash.synced_bit_flips > 0 || s.crash.misdirect_probability > 0;
    if (damaged && db.status().IsCorruption() && NamesSegmentAndOffset(db.status())) {
      r->open_refused = true;
      return;
    }
    r->failure = "reopen failed: " + db.status().ToString();
    return;
  }
  for (uint64_t i = 0; i < state.key_count(); ++i) {
    Result<std::string> value = (*db)->Get(stress::KeyName(i));
    if (!value.ok() && !value.status().IsNotFound()) {
      r->failure = "get " + stress::KeyName(i) + ": " + value.status().ToString();
      break;
    }
    const stress::KeyCheck c = stress::CheckKey(i, value.ok() ? &*value : nullptr, state.Load(i),
                                                state.value_size_max(), /*relaxed=*/false);
    ++r->keys_checked;
    if (c.verdict == stress::Verdict::kOk) continue;
    if (r->first_mismatch.empty()) {
      r->first_mismatch = std::string(stress::VerdictName(c.verdict)) + ": " + c.detail;
    }
    ++(c.verdict == stress::Verdict::kLostWrite           ? r->lost
       : c.verdict == stress::Verdict::kResurrectedDelete ? r->resurrected
                                                          : r->corrupt);
  }
  for (const ShardStats& shard : (*db)->Stats().shards) {
    if (!shard.recovery_note.empty() && r->lost + r->resurrected + r->corrupt > 0) {
      r->first_mismatch += " [recovery note, shard " + std::to_string(shard.shard) + ": " +
                           shard.recovery_note + "]";
    }
  }
  (*db)->Close().IgnoreError();
  if (r->failure.empty() && r->lost + r->resurrected + r->corrupt > 0) {
    r->failure = "acknowledged data not recovered: " + r->first_mismatch;
  }
}

}  // namespace

PowerLossResult RunPowerLossSeed(uint64_t seed, const PowerLossConfig& config,
                                 const std::string& dir) {
  PowerLossResult r;
  const Scenario s = MakeScenario(seed, config);
  r.scenario = s.ToString();
  const std::string path = dir + "/seed-" + std::to_string(seed);
  std::filesystem::remove_all(path);
  Result<std::unique_ptr<stress::ExpectedState>> state =
      stress::ExpectedState::Open("", kKeys, kValueSizeMax);
  if (!state.ok()) {
    r.failure = "expected state: " + state.status().ToString();
    return r;
  }
  r.failure = WriteAndCrash(s, seed, config, path, state->get(), &r.acknowledged);
  if (r.failure.empty()) Check(s, path, **state, &r);
  if (std::getenv("DMALOG_KEEP_TEST_DATA") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  return r;
}

}  // namespace dmalog::testing

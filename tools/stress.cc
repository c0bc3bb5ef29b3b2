#include "tools/stress.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "io/fs.h"
#include "tools/cli_command.h"
#include "tools/expected_state.h"

namespace dmalog::cli {
namespace {

using Clock = std::chrono::steady_clock;
using stress::ExpectedState;
using stress::kGroupKeys;
using stress::Slot;

static_assert(kStressKeysMax == stress::kKeysMax && kStressKeysMin == kGroupKeys);
static_assert(kStressValueSizeMin == stress::kValueSizeMin);
static_assert(kStressValueSizeMax == stress::kValueSizeMax);

constexpr uint64_t kScanPageKeys = 1000;
// Keys outside the key space a verification tolerates reading before it
// stops (each is a mismatch): bounds the scan of a database full of strangers.
constexpr uint64_t kUnexpectedKeysMax = 1000;

void PrintError(std::ostream& err, const std::string& what, const Status& s) {
  err << "dmalog stress: " << what << ": " << s.ToString() << "\n";
}

// ---- Verification.

struct VerifyReport {
  uint64_t keys_checked = 0;
  uint64_t present = 0;
  uint64_t absent = 0;
  uint64_t pending_applied = 0;
  uint64_t pending_not_applied = 0;
  uint64_t by_verdict[5] = {};
  uint64_t torn_batches = 0;
  uint64_t unexpected_keys = 0;
  std::string first_mismatch;

  uint64_t mismatches() const {
    uint64_t n = torn_batches + unexpected_keys;
    for (uint32_t v = 1; v < 5; ++v) n += by_verdict[v];
    return n;
  }
  void Mismatch(const std::string& what) {
    if (first_mismatch.empty()) first_mismatch = what;
  }
};

// Walks the database in key order against the expected state.
class Verifier {
 public:
  Verifier(Engine* db, ExpectedState* state) : db_(db), state_(state) {}

  // Checks every key; on success with no mismatch, records what was found.
  Result<VerifyReport> Run() {
    relaxed_ = state_->relaxed();
    ScanOptions page;
    page.max_keys = kScanPageKeys;
    const uint64_t pages_max = (state_->key_count() + kUnexpectedKeysMax) / kScanPageKeys + 2;
    for (uint64_t pages = 0; pages < pages_max; ++pages) {
      Result<std::vector<KeyValue>> kvs = db_->Scan(page);
      if (!kvs.ok()) return kvs.status();
      for (const KeyValue& kv : *kvs) OnStoredKey(kv);
      if (kvs->size() < page.max_keys || report_.unexpected_keys > kUnexpectedKeysMax) break;
      page.from = kvs->back().key + '\0';
    }
    CheckAbsentUpTo(state_->key_count());
    if (report_.mismatches() == 0) {
      for (const auto& [index, id] : resolutions_) state_->Resolve(index, id);
      state_->SetRelaxed(false);
    }
    return std::move(report_);
  }

 private:
  void OnStoredKey(const KeyValue& kv) {
    std::optional<uint64_t> index = stress::ParseKeyName(kv.key);
    if (!index || *index >= state_->key_count() || *index < next_) {
      ++report_.unexpected_keys;
      report_.Mismatch("key '" + kv.key.substr(0, 64) + "' is outside the stress key space");
      return;
    }
    CheckAbsentUpTo(*index);
    Check(*index, &kv.value);
  }

  void CheckAbsentUpTo(uint64_t end) {
    assert(end <= state_->key_count());
    while (next_ < end) Check(next_, nullptr);  // Check advances next_.
  }

  void Check(uint64_t index, const std::string* value) {
    assert(index == next_);
    next_ = index + 1;
    const Slot slot = state_->Load(index);
    stress::KeyCheck c = stress::CheckKey(index, value, slot, state_->value_size_max(), relaxed_);
    ++report_.keys_checked;
    ++(value != nullptr ? report_.present : report_.absent);
    if (c.verdict != stress::Verdict::kOk) {
      ++report_.by_verdict[static_cast<uint32_t>(c.verdict)];
      report_.Mismatch(std::string(stress::VerdictName(c.verdict)) + ": " + c.detail);
    } else {
      Resolve(index, slot, c);
    }
    if (next_ % kGroupKeys == 0) EndGroup(index / kGroupKeys);
  }

  // Remembers the state found for a key whose slot is not exact yet.
  void Resolve(uint64_t index, const Slot& slot, const stress::KeyCheck& c) {
    const bool distinguishable =
        !(stress::IsAbsentState(slot.committed) && stress::IsAbsentState(slot.pending));
    if (slot.pending != stress::kNoValue) {
      ++(c.found_pending ? report_.pending_applied : report_.pending_not_applied);
      if (distinguishable && !relaxed_) ++(c.found_pending ? group_applied_ : group_unapplied_);
      resolutions_.emplace_back(index, c.found_pending ? slot.pending : slot.committed);
    } else if (relaxed_) {
      const uint64_t newest = stress::VersionOf(slot.committed);
      const uint64_t absent = newest == 0 ? stress::kNoValue : stress::kDeleteBit | newest;
      resolutions_.emplace_back(index, c.found_id == stress::kNoValue ? absent : c.found_id);
    }
  }

  // A batch is one group's pending keys: all applied or none.
  void EndGroup(uint64_t group) {
    if (group_applied_ > 0 && group_unapplied_ > 0) {
      ++report_.torn_batches;
      report_.Mismatch("torn batch in group " + std::to_string(group) + ": " +
                       std::to_string(group_applied_) + " pending keys applied, " +
                       std::to_string(group_unapplied_) + " not");
    }
    group_applied_ = group_unapplied_ = 0;
  }

  Engine* const db_;
  ExpectedState* const state_;
  bool relaxed_ = false;
  uint64_t next_ = 0;  // The next key index to check.
  uint32_t group_applied_ = 0;
  uint32_t group_unapplied_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> resolutions_;
  VerifyReport report_;
};

void PrintVerify(const VerifyReport& r, const ExpectedState& state, std::ostream& out) {
  using stress::Verdict;
  auto n = [&](Verdict v) { return r.by_verdict[static_cast<uint32_t>(v)]; };
  out << "verify: expected state " << state.path() << ": " << state.key_count() << " keys, "
      << state.acknowledged() << " acknowledged writes recorded"
      << (state.relaxed() ? " (relaxed: the last run wrote with --nosync)" : "") << "\n"
      << "verify: checked " << r.keys_checked << " keys: " << r.present << " present, " << r.absent
      << " absent; pending writes found applied " << r.pending_applied << ", not applied "
      << r.pending_not_applied << "\n"
      << "verify: acknowledged writes lost " << n(Verdict::kLostWrite) << ", resurrected deletes "
      << n(Verdict::kResurrectedDelete) << ", corrupt values " << n(Verdict::kCorruptValue)
      << ", unknown values " << n(Verdict::kUnknownValue) << ", torn batches " << r.torn_batches
      << ", unexpected keys " << r.unexpected_keys << "\n";
  if (r.mismatches() == 0) {
    out << "verify: OK\n";
  } else {
    out << "verify: FAILED: " << r.mismatches() << " mismatches; first: " << r.first_mismatch
        << "\n";
  }
}

// Verifies `db` (borrowed) against `state` (borrowed); kExitOk when it matches.
int VerifyOpen(Engine* db, ExpectedState* state, std::ostream& out, std::ostream& err) {
  Result<VerifyReport> report = Verifier(db, state).Run();
  if (!report.ok()) {
    PrintError(err, "verify: scan", report.status());
    out << "verify: FAILED: scan error: " << report.status().ToString() << "\n";
    return kExitError;
  }
  PrintVerify(*report, *state, out);
  return report->mismatches() == 0 ? kExitOk : kExitError;
}

bool AnyPending(const ExpectedState& state) {
  if (state.relaxed()) return true;
  for (uint64_t i = 0; i < state.key_count(); ++i) {
    if (state.Load(i).pending != stress::kNoValue) return true;
  }
  return false;
}

// ---- The workload.

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct OpCounts {
  uint64_t ops = 0;
  uint64_t puts = 0;
  uint64_t overwrites = 0;
  uint64_t deletes = 0;
  uint64_t batches = 0;
  uint64_t batch_entries = 0;
  void Add(const OpCounts& o) {
    ops += o.ops;
    puts += o.puts;
    overwrites += o.overwrites;
    deletes += o.deletes;
    batches += o.batches;
    batch_entries += o.batch_entries;
  }
};

class Workload {
 public:
  Workload(const StressOptions& options, const WriteOptions& write_options, Engine* db,
           ExpectedState* state, uint64_t run)
      : options_(options), write_options_(write_options), db_(db), state_(state), run_(run) {
    groups_ = state_->key_count() / kGroupKeys;
    threads_ = static_cast<uint32_t>(std::min<uint64_t>(options_.threads, groups_));
  }

  // Runs every thread to the end; the first error, if any.
  Status Run(OpCounts* total) {
    deadline_ = options_.duration_s == 0 ? Clock::time_point::max()
                                         : Clock::now() + std::chrono::seconds(options_.duration_s);
    std::vector<OpCounts> counts(threads_);
    std::vector<std::thread> workers;
    for (uint32_t t = 0; t < threads_; ++t) {
      workers.emplace_back([this, t, &counts] { Thread(t, &counts[t]); });
    }
    for (std::thread& w : workers) w.join();
    for (const OpCounts& c : counts) total->Add(c);
    std::lock_guard lock(mu_);
    return error_;
  }
  uint32_t threads() const { return threads_; }

 private:
  void Thread(uint32_t t, OpCounts* counts) {
    std::mt19937_64 rng(Mix(options_.seed) ^ Mix(run_ << 20 | t));
    const uint64_t owned = (groups_ - t + threads_ - 1) / threads_;
    uint64_t limit = UINT64_MAX;
    if (options_.ops > 0) limit = options_.ops / threads_ + (t < options_.ops % threads_ ? 1 : 0);
    for (uint64_t op = 0; op < limit && !stop_.load(std::memory_order_relaxed); ++op) {
      if (Clock::now() >= deadline_) break;
      const uint64_t group = t + threads_ * (rng() % owned);
      const bool batch = rng() % 100 < options_.batch_percent;
      Status s = batch ? Batch(group, rng, counts) : Single(group, rng, counts);
      if (!s.ok()) {
        std::lock_guard lock(mu_);
        if (error_.ok()) error_ = s;
        stop_.store(true);
        return;
      }
      ++counts->ops;
    }
  }

  Status Single(uint64_t group, std::mt19937_64& rng, OpCounts* counts) {
    const uint64_t index = group * kGroupKeys + rng() % kGroupKeys;
    const bool del = rng() % 100 < options_.delete_percent;
    const Slot before = state_->Load(index);
    const uint64_t version = state_->NextVersion(index);
    const uint64_t id = del ? version | stress::kDeleteBit : version;
    const std::string key = stress::KeyName(index);
    state_->MarkPending(index, id);
    Status s = del ? db_->Delete(write_options_, key)
                   : db_->Put(write_options_, key,
                              stress::ValueFor(index, version, state_->value_size_max()));
    if (!s.ok()) return s.WithContext("stress " + std::string(del ? "delete " : "put ") + key);
    state_->Commit(index, id);
    state_->AddAcknowledged(1);
    ++(del ? counts->deletes : counts->puts);
    if (!del && !stress::IsAbsentState(before.committed)) ++counts->overwrites;
    return Status::OK();
  }

  Status Batch(uint64_t group, std::mt19937_64& rng, OpCounts* counts) {
    uint32_t members[kGroupKeys];
    for (uint32_t m = 0; m < kGroupKeys; ++m) members[m] = m;
    std::shuffle(members, members + kGroupKeys, rng);
    const uint32_t n = 2 + static_cast<uint32_t>(rng() % (kGroupKeys - 1));
    assert(n <= kGroupKeys);
    uint64_t ids[kGroupKeys];
    WriteBatch batch;
    for (uint32_t k = 0; k < n; ++k) {
      const uint64_t index = group * kGroupKeys + members[k];
      const uint64_t version = state_->NextVersion(index);
      const bool del = rng() % 100 < options_.delete_percent;
      ids[k] = del ? version | stress::kDeleteBit : version;
      const std::string key = stress::KeyName(index);
      DMALOG_RETURN_IF_ERROR(
          del ? batch.Delete(key)
              : batch.Put(key, stress::ValueFor(index, version, state_->value_size_max())));
    }
    for (uint32_t k = 0; k < n; ++k) state_->MarkPending(group * kGroupKeys + members[k], ids[k]);
    Status s = db_->Write(write_options_, batch);
    if (!s.ok()) return s.WithContext("stress batch of group " + std::to_string(group));
    for (uint32_t k = 0; k < n; ++k) state_->Commit(group * kGroupKeys + members[k], ids[k]);
    state_->AddAcknowledged(n);
    ++counts->batches;
    counts->batch_entries += n;
    return Status::OK();
  }

  const StressOptions& options_;
  const WriteOptions write_options_;
  Engine* const db_;
  ExpectedState* const state_;
  const uint64_t run_;
  uint64_t groups_ = 0;
  uint32_t threads_ = 0;
  Clock::time_point deadline_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Status error_;
};

Result<std::unique_ptr<ExpectedState>> OpenState(const StressOptions& options,
                                                 const std::string& path) {
  Result<bool> exists = io::PathExists(path);
  if (!exists.ok()) return exists.status();
  if (options.verify || *exists) return ExpectedState::OpenExisting(path);
  const uint64_t keys = (options.keys + kGroupKeys - 1) / kGroupKeys * kGroupKeys;
  return ExpectedState::Open(path, keys, options.value_size_max);
}

int Stress(const StressOptions& options, Engine* db, ExpectedState* state,
           const WriteOptions& write_options, std::ostream& out, std::ostream& err) {
  if (AnyPending(*state)) {
    out << "stress: the last run left writes pending; verifying first\n";
    const int code = VerifyOpen(db, state, out, err);
    if (code != kExitOk) return code;
  }
  const uint64_t run = state->StartRun();
  if (!write_options.sync) state->SetRelaxed(true);
  Workload workload(options, write_options, db, state, run);
  const auto start = Clock::now();
  OpCounts c;
  Status s = workload.Run(&c);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  out << "stress: run " << run << ": " << c.ops << " operations acknowledged in " << seconds
      << " s (" << static_cast<uint64_t>(c.ops / std::max(seconds, 1e-9)) << " ops/s): puts "
      << c.puts << " (overwrites " << c.overwrites << "), deletes " << c.deletes << ", batches "
      << c.batches << " (" << c.batch_entries << " entries); threads " << workload.threads()
      << ", keys " << state->key_count() << ", seed " << options.seed << ", sync "
      << (write_options.sync ? "true" : "false") << "\n";
  if (!s.ok()) {
    PrintError(err, "write failed", s);
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

std::string ExpectedStatePath(const StressOptions& options, const std::string& db_path) {
  if (!options.expected_state_path.empty()) return options.expected_state_path;
  std::string dir = db_path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + ".expected_state";
}

int RunStress(const StressOptions& options, const Options& db_options,
              const WriteOptions& write_options, std::ostream& out, std::ostream& err) {
  const std::string path = ExpectedStatePath(options, db_options.db_path);
  Result<std::unique_ptr<ExpectedState>> state = OpenState(options, path);
  if (!state.ok()) {
    PrintError(err, "expected state", state.status());
    return state.status().IsInvalidArgument() ? kExitUsage : kExitError;
  }
  Options o = db_options;
  o.create_if_missing = !options.verify;
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  if (options.verify && !db.ok() && db.status().IsNotFound() && (*state)->acknowledged() == 0 &&
      !AnyPending(**state)) {
    // Killed before the first write: there is nothing to check yet.
    out << "verify: no database and no write recorded: nothing to check\nverify: OK\n";
    return kExitOk;
  }
  if (!db.ok()) {
    PrintError(err, "open " + o.db_path, db.status());
    if (options.verify) out << "verify: FAILED: open: " << db.status().ToString() << "\n";
    return kExitError;
  }
  int code = options.verify ? VerifyOpen(db->get(), state->get(), out, err)
                            : Stress(options, db->get(), state->get(), write_options, out, err);
  out.flush();
  Status closed = (*db)->Close();
  if (!closed.ok()) {
    PrintError(err, "close", closed);
    return kExitError;
  }
  // Close flushed every queued write: an unsynced run's writes are durable.
  if (!options.verify && code == kExitOk && !write_options.sync) (*state)->SetRelaxed(false);
  return code;
}

}  // namespace dmalog::cli

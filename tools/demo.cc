#include "tools/demo.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "tools/cli_verbs.h"

namespace dmalog::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Demo keys sort inside [kPrefix, kPrefixEnd).
constexpr std::string_view kPrefix = "demo:";
constexpr std::string_view kPrefixEnd = "demo;";
static_assert(':' + 1 == ';', "kPrefixEnd is the first key after every kPrefix key");
constexpr uint64_t kScanPageKeys = 1000;
constexpr size_t kValueBytes = 100;

std::string DemoKey(uint32_t thread, uint64_t i) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "demo:t%02u:%08llu", thread, static_cast<unsigned long long>(i));
  return buf;
}

// A value unique to this run, so a read can tell it from an earlier run's.
std::string DemoValue(const std::string& run, uint32_t thread, uint64_t i) {
  std::string v = run + " t" + std::to_string(thread) + " #" + std::to_string(i) + " ";
  v.resize(std::max(v.size(), kValueBytes), '.');
  return v;
}

// The first failure of any worker thread; later ones are dropped.
class FirstError {
 public:
  void Set(const std::string& what) {
    std::lock_guard lock(mu_);
    if (what_.empty()) what_ = what;
  }
  std::string Get() {
    std::lock_guard lock(mu_);
    return what_;
  }

 private:
  std::mutex mu_;
  std::string what_;
};

struct Phase {
  double seconds = 0;
  std::vector<uint64_t> latencies_us;  // Writes only.
};

// Runs fn(thread) on cmd.demo_threads threads and times the whole.
template <typename Fn>
double RunThreads(uint32_t threads, Fn fn) {
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (uint32_t t = 0; t < threads; ++t) workers.emplace_back(fn, t);
  for (std::thread& w : workers) w.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Phase WriteAll(const Command& cmd, Engine* db, const std::string& run, FirstError* error) {
  std::vector<std::vector<uint64_t>> latencies(cmd.demo_threads);
  Phase phase;
  phase.seconds = RunThreads(cmd.demo_threads, [&](uint32_t t) {
    latencies[t].reserve(cmd.demo_records_per_thread);
    WriteOptions sync;  // Durable: the latency of an acknowledged write.
    for (uint64_t i = 0; i < cmd.demo_records_per_thread; ++i) {
      const auto start = Clock::now();
      Status s = db->Put(sync, DemoKey(t, i), DemoValue(run, t, i));
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
      latencies[t].push_back(static_cast<uint64_t>(us));
      if (!s.ok()) return error->Set("put " + DemoKey(t, i) + ": " + s.ToString());
    }
  });
  for (auto& l : latencies) phase.latencies_us.insert(phase.latencies_us.end(), l.begin(), l.end());
  std::sort(phase.latencies_us.begin(), phase.latencies_us.end());
  return phase;
}

double VerifyAll(const Command& cmd, Engine* db, const std::string& run, FirstError* error) {
  return RunThreads(cmd.demo_threads, [&](uint32_t t) {
    for (uint64_t i = 0; i < cmd.demo_records_per_thread; ++i) {
      const std::string key = DemoKey(t, i);
      Result<std::string> v = db->Get(key);
      if (!v.ok()) return error->Set("get " + key + ": " + v.status().ToString());
      if (*v != DemoValue(run, t, i)) {
        return error->Set("get " + key + " returned '" + *v + "', expected '" +
                          DemoValue(run, t, i) + "'");
      }
    }
  });
}

// Scans the demo keys in pages: checks their order and that this run's keys
// are all there, and deletes keys an earlier, larger run left behind.
Status ScanAndTidy(const Command& cmd, Engine* db, const std::string& run, uint64_t* stale) {
  ScanOptions page;
  page.from = std::string(kPrefix);
  page.to = std::string(kPrefixEnd);
  page.max_keys = kScanPageKeys;
  const std::string tag = run + " ";  // DemoValue's start.
  uint64_t ours = 0;
  std::string previous;
  std::vector<std::string> leftovers;
  const uint64_t total = cmd.demo_threads * cmd.demo_records_per_thread;
  // Earlier runs wrote at most kDemoThreadsMax x kDemoRecordsPerThreadMax keys.
  const uint64_t pages_max = kDemoThreadsMax * kDemoRecordsPerThreadMax / kScanPageKeys + 2;
  for (uint64_t pages = 0; pages < pages_max; ++pages) {
    Result<std::vector<KeyValue>> kvs = db->Scan(page);
    if (!kvs.ok()) return kvs.status();
    for (const KeyValue& kv : *kvs) {
      if (!previous.empty() && kv.key <= previous) {
        return Status::Corruption("scan returned '" + kv.key + "' after '" + previous + "'");
      }
      previous = kv.key;
      if (kv.value.compare(0, tag.size(), tag) == 0) {
        ++ours;
      } else {
        ++*stale;
        leftovers.push_back(kv.key);
      }
    }
    if (kvs->size() < page.max_keys) break;
    page.from = kvs->back().key + '\0';
  }
  if (ours != total) {
    return Status::Corruption("scan found " + std::to_string(ours) + " of this run's " +
                              std::to_string(total) + " keys");
  }
  for (const std::string& key : leftovers) DMALOG_RETURN_IF_ERROR(db->Delete({}, key));
  return Status::OK();
}

uint64_t Percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

void Report(const Command& cmd, const Phase& writes, double read_seconds, uint64_t stale,
            const EngineStats& stats, std::ostream& out) {
  const uint64_t n = cmd.demo_threads * cmd.demo_records_per_thread;
  std::error_code ec;
  std::filesystem::path where = std::filesystem::weakly_canonical(cmd.options.db_path, ec);
  if (ec) where = std::filesystem::absolute(cmd.options.db_path);
  char line[256];
  out << "dmalog demo: all checks passed\n";
  out << "  records:      " << n << " (" << cmd.demo_threads << " threads x "
      << cmd.demo_records_per_thread << ", " << kValueBytes << "-byte values)\n";
  std::snprintf(line, sizeof(line),
                "  writes:       %.0f ops/s durable (%.2f s), latency p50 %llu us, p99 %llu us\n",
                static_cast<double>(n) / writes.seconds, writes.seconds,
                static_cast<unsigned long long>(Percentile(writes.latencies_us, 0.50)),
                static_cast<unsigned long long>(Percentile(writes.latencies_us, 0.99)));
  out << line;
  std::snprintf(line, sizeof(line), "  reads:        %.0f ops/s (%.2f s)\n",
                static_cast<double>(n) / read_seconds, read_seconds);
  out << line;
  out << "  verified:     every key read back, scanned in order, and read again after "
         "reopen (recovery)";
  if (stale > 0) out << "; removed " << stale << " keys of an earlier, larger run";
  out << "\n  io backend:   " << stats.io_backend << "\n";
  if (!stats.io_fallback.empty()) out << "  io fallback:  " << stats.io_fallback << "\n";
  out << "  direct I/O:   "
      << (stats.direct_io ? "yes, O_DIRECT (alignment " +
                                std::to_string(stats.write_alignment_bytes) + " bytes)"
                          : std::string("no, buffered I/O + fdatasync"))
      << "\n  shards:       " << stats.shards.size() << "\n  data:         " << where.string()
      << "\n";
}

int Fail(std::ostream& err, const std::string& what) {
  err << "dmalog demo: FAILED: " << what
      << "\n  (run `dmalog --db=DIR stats` for the database state; an I/O error names the file)\n";
  return kExitError;
}

}  // namespace

int RunDemo(const Command& cmd, std::ostream& out, std::ostream& err) {
  const std::string run =
      "run" + std::to_string(Clock::now().time_since_epoch().count() % 1'000'000'007);
  Result<std::unique_ptr<Engine>> db = OpenForCli(cmd);
  if (!db.ok()) return Fail(err, "open: " + db.status().ToString());
  FirstError error;
  const Phase writes = WriteAll(cmd, db->get(), run, &error);
  if (!error.Get().empty()) return Fail(err, error.Get());
  const double read_seconds = VerifyAll(cmd, db->get(), run, &error);
  if (!error.Get().empty()) return Fail(err, error.Get());
  uint64_t stale = 0;
  Status s = ScanAndTidy(cmd, db->get(), run, &stale);
  if (!s.ok()) return Fail(err, "scan: " + s.ToString());
  s = (*db)->Close();
  if (!s.ok()) return Fail(err, "close: " + s.ToString());
  db = OpenForCli(cmd);
  if (!db.ok()) return Fail(err, "reopen (recovery): " + db.status().ToString());
  VerifyAll(cmd, db->get(), run, &error);
  if (!error.Get().empty()) return Fail(err, "after reopen: " + error.Get());
  const EngineStats stats = (*db)->Stats();
  s = (*db)->Close();
  if (!s.ok()) return Fail(err, "close: " + s.ToString());
  Report(cmd, writes, read_seconds, stale, stats, out);
  return kExitOk;
}

}  // namespace dmalog::cli

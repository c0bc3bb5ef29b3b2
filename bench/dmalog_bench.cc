// dmalog_bench: a db_bench-style driver for dmalog. It takes db_bench's flag
// names and prints db_bench's result lines, so bench/compare.sh can run both
// on the same workload:
//   dmalog_bench --benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq
//                --num=N (per thread) --key_size=16 --value_size=100
//                --threads=T --sync=0|1 [--inflight=K] [--db=DIR]
// --inflight=K keeps K operations in flight per thread through the
// asynchronous API (PutAsync/GetAsync) instead of one blocking call at a time.
#include <gflags/gflags.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dmalog/engine.h"

DEFINE_string(benchmarks, "fillseq,fillrandom,overwrite,readrandom,readseq",
              "comma-separated list of benchmarks to run, in order");
DEFINE_int64(num, 100000, "operations per thread (as db_bench counts it)");
DEFINE_int64(reads, -1, "read operations per thread; -1 means --num");
DEFINE_int32(key_size, 16, "key size in bytes");
DEFINE_int32(value_size, 100, "value size in bytes");
DEFINE_int32(threads, 1, "client threads");
DEFINE_bool(sync, false, "durable writes (acknowledged after fdatasync)");
DEFINE_int32(inflight, 1, "operations in flight per thread (async API when > 1)");
DEFINE_string(db, DMALOG_BENCH_DATA_DIR "/dmalog_bench", "database directory");
DEFINE_bool(use_existing_db, false, "keep the database instead of starting empty");
DEFINE_int32(shards, 0, "shards for a new database (0: one per CPU)");
DEFINE_uint64(segment_size_bytes, 64ull << 20, "segment size for a new database");
DEFINE_int64(seed, 301, "random seed");
DEFINE_int32(idle_poll_us, -1, "Options::idle_poll_us (-1: the engine's default)");
DEFINE_int32(caller_spin_us, -1, "Options::caller_spin_us (-1: the engine's default)");
DEFINE_bool(read_on_calling_thread, true, "Options::read_on_calling_thread");
DEFINE_int32(group_commit_linger_us, -1,
             "Options::group_commit_linger_us (-1: the engine's default)");
DEFINE_string(cpus, "", "Options::cpus: comma-separated CPUs to pin shard i to (empty: unpinned)");
DEFINE_string(key_format, "db_bench",
              "db_bench: the key number as 8 big-endian bytes, then '0' padding to "
              "--key_size (db_bench's GenerateKeyFromInt); decimal: the number in "
              "decimal digits, zero-padded on the left");

namespace {

using Clock = std::chrono::steady_clock;

struct ThreadResult {
  std::vector<float> latencies_us;
  uint64_t ops = 0;
  uint64_t found = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  std::string first_error;
};

// Keys and values cost the benchmark no allocation per operation, as in
// db_bench: a key is formatted into a buffer the caller keeps, a value is a
// window into a buffer of random letters generated once per thread.
constexpr size_t kKeyDigitsMax = 20;  // UINT64_MAX in decimal.
constexpr size_t kValueSourceBytes = 1u << 20;

size_t KeyBufferBytes() { return std::max<size_t>(FLAGS_key_size, kKeyDigitsMax); }

constexpr size_t kKeyNumberBytes = 8;

// `k` as db_bench writes it: big-endian bytes (at most 8, fewer when
// --key_size is smaller), then '0' to --key_size.
std::string_view FormatDbBenchKey(uint64_t k, std::span<char> buf) {
  const size_t size = static_cast<size_t>(FLAGS_key_size);
  const size_t n = std::min(size, kKeyNumberBytes);
  assert(size <= buf.size());
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<char>((k >> ((n - i - 1) * 8)) & 0xff);
  std::fill(buf.begin() + n, buf.begin() + size, '0');
  return std::string_view(buf.data(), size);
}

// `k` in --key_format, written into `buf` (KeyBufferBytes() long,
// borrowed); the view is valid while `buf` is.
std::string_view FormatKey(uint64_t k, std::span<char> buf) {
  if (FLAGS_key_format == "db_bench") return FormatDbBenchKey(k, buf);
  char digits[kKeyDigitsMax];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + k % 10);
    k /= 10;
  } while (k != 0 && n < kKeyDigitsMax);
  const size_t size = std::max<size_t>(n, FLAGS_key_size);
  assert(size <= buf.size());
  std::fill(buf.begin(), buf.begin() + (size - n), '0');
  for (size_t i = 0; i < n; ++i) buf[size - 1 - i] = digits[i];
  return std::string_view(buf.data(), size);
}

class ValueSource {
 public:
  explicit ValueSource(std::mt19937_64& rng) : data_(kValueSourceBytes + FLAGS_value_size, 'x') {
    for (size_t i = 0; i < data_.size(); i += 8) data_[i] = static_cast<char>('a' + rng() % 26);
  }
  // The next --value_size bytes; valid for the source's life.
  std::string_view Next() {
    if (pos_ + FLAGS_value_size > data_.size()) pos_ = 0;
    std::string_view v(data_.data() + pos_, FLAGS_value_size);
    pos_ += FLAGS_value_size;
    return v;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

enum class Op { kFillSeq, kFillRandom, kOverwrite, kReadRandom, kReadSeq };

uint64_t KeyFor(Op op, int thread, uint64_t i, std::mt19937_64& rng) {
  const uint64_t space = static_cast<uint64_t>(FLAGS_num) * FLAGS_threads;
  if (op == Op::kFillSeq) return static_cast<uint64_t>(thread) * FLAGS_num + i;
  return rng() % space;
}

void RecordStatus(ThreadResult& r, const dmalog::Status& s) {
  if (s.ok()) return;
  ++r.errors;
  if (r.first_error.empty()) r.first_error = s.ToString();
}

// One operation at a time, blocking.
void RunBlocking(dmalog::Engine& db, Op op, int thread, ThreadResult& r) {
  std::mt19937_64 rng(FLAGS_seed + thread * 7919 + static_cast<int>(op));
  const int64_t count = op == Op::kReadRandom && FLAGS_reads >= 0 ? FLAGS_reads : FLAGS_num;
  const dmalog::WriteOptions wo{FLAGS_sync};
  ValueSource values(rng);
  std::vector<char> key_buf(KeyBufferBytes());
  for (int64_t i = 0; i < count; ++i) {
    const std::string_view key = FormatKey(KeyFor(op, thread, i, rng), key_buf);
    const auto start = Clock::now();
    if (op == Op::kReadRandom) {
      dmalog::Result<std::string> v = db.Get(key);
      if (v.ok()) {
        ++r.found;
        r.bytes += key.size() + v->size();
      } else if (!v.status().IsNotFound()) {
        RecordStatus(r, v.status());
      }
    } else {
      const std::string_view value = values.Next();
      RecordStatus(r, db.Put(wo, key, value));
      r.bytes += key.size() + value.size();
    }
    r.latencies_us.push_back(
        std::chrono::duration<float, std::micro>(Clock::now() - start).count());
    ++r.ops;
  }
}

// --inflight operations in flight through the asynchronous API. Callbacks
// run on executor threads; each records into its own slot and its own
// latency cell (no lock, as db_bench keeps per-thread stats), and the
// thread sums the slots at the end.
struct Slot {
  std::vector<char> key_buf = std::vector<char>(KeyBufferBytes());
  std::string_view key;    // In key_buf.
  std::string_view value;  // In the thread's ValueSource.
  Clock::time_point start;
  float* latency_us = nullptr;  // Cell of the operation in flight.
  uint64_t ops = 0;
  uint64_t found = 0;
  uint64_t bytes = 0;
  ThreadResult errors;  // Only errors and first_error are used.
  std::atomic<bool> busy{false};
};

// Keeps --inflight operations in flight: each new operation takes whichever
// slot finished, not slot i % N (waiting for one slow operation in order
// would leave the others idle, as fio's iodepth never does).
//
// Lifetime: a callback touches the picker until its last statement, the
// increment of exited_; WaitAll returns only once every issued operation's
// callback got there, so the picker (on RunAsync's stack) outlives them all.
class SlotPicker {
 public:
  // An operation that takes longer than this is reported as stuck.
  static constexpr std::chrono::seconds kOperationTimeout{120};

  explicit SlotPicker(std::vector<Slot>& slots) : slots_(slots) {}
  // A free slot, or null if none freed up within kOperationTimeout.
  Slot* Take() {
    const auto deadline = Clock::now() + kOperationTimeout;
    // Bounded by the deadline; each round scans every slot once.
    while (Clock::now() < deadline) {
      const uint32_t seen = finished_.load(std::memory_order_acquire);
      for (size_t n = 0; n < slots_.size(); ++n) {
        Slot& slot = slots_[next_];
        next_ = (next_ + 1) % slots_.size();
        if (!slot.busy.load(std::memory_order_acquire)) {
          ++issued_;
          return &slot;
        }
      }
      finished_.wait(seen, std::memory_order_acquire);
    }
    return nullptr;
  }
  // The last thing the callback that completes `slot`'s operation does.
  void Finish(Slot& slot) {
    slot.busy.store(false, std::memory_order_release);
    finished_.fetch_add(1, std::memory_order_acq_rel);
    finished_.notify_one();
    exited_.fetch_add(1, std::memory_order_release);  // The picker's last use.
  }
  // Waits until every operation's callback has exited Finish; false if one
  // did not within kOperationTimeout.
  bool WaitAll() {
    constexpr auto kPoll = std::chrono::microseconds(50);
    const auto deadline = Clock::now() + kOperationTimeout;
    // Bounded by the deadline. Polls: a futex wake-up would touch the picker
    // after the callback's last use of it.
    while (exited_.load(std::memory_order_acquire) != issued_) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(kPoll);
    }
    return true;
  }

 private:
  std::vector<Slot>& slots_;
  size_t next_ = 0;
  uint64_t issued_ = 0;  // Driver thread only.
  std::atomic<uint32_t> finished_{0};
  std::atomic<uint64_t> exited_{0};
};

// An operation got no reply within SlotPicker::kOperationTimeout. Aborts:
// the engine still holds the slots' memory, so the stack must not unwind.
[[noreturn]] void AbortStuck() {
  std::fprintf(stderr, "dmalog_bench: an operation is stuck (no reply in %lld s)\n",
               static_cast<long long>(SlotPicker::kOperationTimeout.count()));
  std::abort();
}

void RunAsync(dmalog::Engine& db, Op op, int thread, ThreadResult& r) {
  std::mt19937_64 rng(FLAGS_seed + thread * 7919 + static_cast<int>(op));
  const int64_t count = op == Op::kReadRandom && FLAGS_reads >= 0 ? FLAGS_reads : FLAGS_num;
  const dmalog::WriteOptions wo{FLAGS_sync};
  ValueSource values(rng);
  std::vector<Slot> slots(FLAGS_inflight);
  SlotPicker picker(slots);
  std::vector<float> latencies_us(count);
  for (int64_t i = 0; i < count; ++i) {
    Slot* taken = picker.Take();
    if (taken == nullptr) AbortStuck();
    Slot& slot = *taken;
    slot.key = FormatKey(KeyFor(op, thread, i, rng), slot.key_buf);
    slot.latency_us = &latencies_us[i];
    slot.busy.store(true, std::memory_order_relaxed);
    slot.start = Clock::now();
    auto finish = [&slot, &picker](const dmalog::Status& s, uint64_t bytes, bool found) {
      *slot.latency_us =
          std::chrono::duration<float, std::micro>(Clock::now() - slot.start).count();
      RecordStatus(slot.errors, s);
      slot.bytes += bytes;
      slot.found += found ? 1 : 0;
      ++slot.ops;
      picker.Finish(slot);
    };
    if (op == Op::kReadRandom) {
      db.GetAsync(slot.key, [finish, &slot](dmalog::Result<std::string> v) {
        const bool found = v.ok();
        const uint64_t bytes = found ? slot.key.size() + v->size() : 0;
        finish(found || v.status().IsNotFound() ? dmalog::Status() : v.status(), bytes, found);
      });
    } else {
      slot.value = values.Next();
      db.PutAsync(wo, slot.key, slot.value, [finish, &slot](dmalog::Status s) {
        finish(s, slot.key.size() + slot.value.size(), false);
      });
    }
  }
  if (!picker.WaitAll()) AbortStuck();
  for (Slot& slot : slots) {
    r.ops += slot.ops;
    r.found += slot.found;
    r.bytes += slot.bytes;
    r.errors += slot.errors.errors;
    if (r.first_error.empty()) r.first_error = slot.errors.first_error;
  }
  r.latencies_us.insert(r.latencies_us.end(), latencies_us.begin(), latencies_us.end());
}

void RunReadSeq(dmalog::Engine& db, ThreadResult& r) {
  dmalog::ScanOptions so;
  so.max_keys = 1000;
  // Bounded: each page advances past at least one key.
  for (int64_t page = 0; page < FLAGS_num * FLAGS_threads + 1; ++page) {
    const auto start = Clock::now();
    dmalog::Result<std::vector<dmalog::KeyValue>> kvs = db.Scan(so);
    if (!kvs.ok()) return RecordStatus(r, kvs.status());
    const float us = std::chrono::duration<float, std::micro>(Clock::now() - start).count();
    for (const dmalog::KeyValue& kv : *kvs) {
      r.latencies_us.push_back(us / kvs->size());
      r.bytes += kv.key.size() + kv.value.size();
      ++r.ops;
    }
    if (kvs->size() < so.max_keys) return;
    so.from = kvs->back().key + '\0';
  }
}

// The process's user and system CPU so far, in microseconds.
struct CpuUs {
  double user_us = 0;
  double system_us = 0;
};
CpuUs ProcessCpuUs() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return {};  // Only a figure: report 0.
  auto us = [](const timeval& tv) { return tv.tv_sec * 1e6 + tv.tv_usec; };
  return {us(ru.ru_utime), us(ru.ru_stime)};
}

void Report(const std::string& name, const std::vector<ThreadResult>& results, double seconds,
            bool is_read, CpuUs cpu) {
  std::vector<float> all;
  uint64_t ops = 0, bytes = 0, found = 0, errors = 0;
  std::string first_error;
  for (const ThreadResult& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    ops += r.ops;
    bytes += r.bytes;
    found += r.found;
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
  }
  if (ops == 0) ops = 1;
  const int threads = static_cast<int>(results.size());
  std::string extra;
  if (is_read && name != "readseq") {
    extra = " (" + std::to_string(found) + " of " + std::to_string(ops) + " found)";
  }
  std::printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %lu operations; %6.1f MB/s%s\n",
              name.c_str(), seconds * 1e6 * threads / ops, static_cast<long>(ops / seconds),
              seconds, static_cast<unsigned long>(ops), bytes / 1048576.0 / seconds, extra.c_str());
  std::sort(all.begin(), all.end());
  auto pct = [&all](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1, static_cast<size_t>(p / 100 * all.size()))];
  };
  std::printf("Percentiles: P50: %.2f P75: %.2f P99: %.2f P99.9: %.2f P99.99: %.2f\n", pct(50),
              pct(75), pct(99), pct(99.9), pct(99.99));
  // CPU per operation: the engine's executors and the client threads
  // together. Steadier than ops/s on a shared device, so it shows what a
  // change costs in CPU even when the device's speed moves.
  std::printf("CPU: %.2f us/op (user %.2f, system %.2f; every thread of the process)\n",
              (cpu.user_us + cpu.system_us) / ops, cpu.user_us / ops, cpu.system_us / ops);
  if (errors > 0)
    std::printf("errors: %lu (first: %s)\n", static_cast<unsigned long>(errors),
                first_error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("db_bench-style benchmark for dmalog; see bench/compare.sh");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_threads < 1 || FLAGS_inflight < 1 || FLAGS_num < 1 || FLAGS_key_size < 1 ||
      FLAGS_value_size < 0) {
    std::fprintf(stderr,
                 "dmalog_bench: --threads, --inflight, --num and --key_size must be >= 1\n");
    return 2;
  }
  if (FLAGS_key_format != "db_bench" && FLAGS_key_format != "decimal") {
    std::fprintf(stderr, "dmalog_bench: --key_format must be db_bench or decimal, not '%s'\n",
                 FLAGS_key_format.c_str());
    return 2;
  }
  if (!FLAGS_use_existing_db) std::filesystem::remove_all(FLAGS_db);
  dmalog::Options options;
  options.db_path = FLAGS_db;
  options.shard_count = static_cast<uint32_t>(FLAGS_shards);
  options.segment_size_bytes = FLAGS_segment_size_bytes;
  if (FLAGS_idle_poll_us >= 0) options.idle_poll_us = static_cast<uint32_t>(FLAGS_idle_poll_us);
  options.read_on_calling_thread = FLAGS_read_on_calling_thread;
  if (FLAGS_group_commit_linger_us >= 0) {
    options.group_commit_linger_us = static_cast<uint32_t>(FLAGS_group_commit_linger_us);
  }
  if (FLAGS_caller_spin_us >= 0) {
    options.caller_spin_us = static_cast<uint32_t>(FLAGS_caller_spin_us);
  }
  {
    std::stringstream cpus(FLAGS_cpus);
    // Bounded by the flag's length.
    for (std::string cpu; std::getline(cpus, cpu, ',');) {
      if (cpu.empty() || cpu.find_first_not_of("0123456789") != std::string::npos) {
        std::fprintf(stderr, "dmalog_bench: --cpus must be CPU numbers like 0,1, not '%s'\n",
                     FLAGS_cpus.c_str());
        return 2;
      }
      options.cpus.push_back(std::stoi(cpu));
    }
  }
  dmalog::Result<std::unique_ptr<dmalog::Engine>> db = dmalog::Engine::Open(options);
  if (!db.ok()) {
    std::fprintf(stderr, "dmalog_bench: %s\n", db.status().ToString().c_str());
    return 3;
  }
  const dmalog::EngineStats info = (*db)->Stats();
  std::printf(
      "dmalog_bench: keys %d bytes, values %d bytes, %d threads x %ld ops, sync=%d, "
      "inflight=%d, shards=%zu, %s, %s I/O, db %s\n",
      FLAGS_key_size, FLAGS_value_size, FLAGS_threads, static_cast<long>(FLAGS_num),
      FLAGS_sync ? 1 : 0, FLAGS_inflight, info.shards.size(), info.io_backend.c_str(),
      info.direct_io ? "direct" : "buffered", FLAGS_db.c_str());
  std::stringstream list(FLAGS_benchmarks);
  std::string name;
  while (std::getline(list, name, ',')) {
    Op op;
    if (name == "fillseq")
      op = Op::kFillSeq;
    else if (name == "fillrandom")
      op = Op::kFillRandom;
    else if (name == "overwrite")
      op = Op::kOverwrite;
    else if (name == "readrandom")
      op = Op::kReadRandom;
    else if (name == "readseq")
      op = Op::kReadSeq;
    else {
      std::fprintf(stderr, "dmalog_bench: unknown benchmark '%s'\n", name.c_str());
      return 2;
    }
    const int threads = op == Op::kReadSeq ? 1 : FLAGS_threads;
    std::vector<ThreadResult> results(threads);
    const CpuUs cpu_start = ProcessCpuUs();
    const auto start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        if (op == Op::kReadSeq) return RunReadSeq(**db, results[t]);
        if (FLAGS_inflight > 1) return RunAsync(**db, op, t, results[t]);
        RunBlocking(**db, op, t, results[t]);
      });
    }
    for (auto& w : workers) w.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const CpuUs cpu_end = ProcessCpuUs();
    Report(name, results, seconds, op == Op::kReadRandom || op == Op::kReadSeq,
           {cpu_end.user_us - cpu_start.user_us, cpu_end.system_us - cpu_start.system_us});
  }
  const dmalog::EngineStats stats = (*db)->Stats();
  double overhead = 0;
  uint64_t keys = 0, flushes = 0, flushed = 0;
  for (const dmalog::ShardStats& s : stats.shards) {
    overhead += s.index_overhead_bytes_per_key * s.keys;
    keys += s.keys;
    flushes += s.flushes;
    flushed += s.records_flushed;
  }
  std::printf("index: %lu keys, %.1f bytes per key + key bytes\n", static_cast<unsigned long>(keys),
              keys ? overhead / keys : 0.0);
  std::printf("group commit: %lu records in %lu flushes (%.1f per flush)\n",
              static_cast<unsigned long>(flushed), static_cast<unsigned long>(flushes),
              flushes ? static_cast<double>(flushed) / flushes : 0.0);
  dmalog::Status s = (*db)->Close();
  if (!s.ok()) std::fprintf(stderr, "dmalog_bench: close: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 3;
}

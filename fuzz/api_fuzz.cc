// Fuzzes sequences of Engine operations with reopens against a std::map
// model (as oss-fuzz's LevelDB fuzz_db does): put, get, delete, batch, their
// asynchronous forms, scan, close + reopen, sync, on a fresh one-shard
// database with 4 MiB segments under the build tree. Every result must match
// the model; errors are only the documented InvalidArgument for oversized
// keys and values (which leave the model unchanged).
//
// Input: a sequence of operations, each an opcode byte and its operands:
//   (opcode & 0x7F) % 7 == 0  put:    klen(1) vlen(1) key value
//                          1  get:    klen(1) key
//                          2  delete: klen(1) key
//                          3  scan:   flen(1) tlen(1) n(1) from to (max_keys = n + 1)
//                          4  batch:  count(1) then per entry put?(1) klen(1) vlen(1) key value
//                          5  close and reopen
//                          6  sync
//   opcode bit 7 (0x80): sync = true for put, delete, batch and their
//   asynchronous forms.
//   opcode bit 6 (0x40): the asynchronous form (PutAsync, GetAsync,
//   DeleteAsync, WriteAsync, ScanAsync, SyncAsync) of put, get, delete,
//   batch, scan and sync, with the same operands; reopen ignores it. The kind is still
//   (opcode & 0x7F) % 7, so older inputs keep their ops and operands (one
//   with bit 6 set now makes the same change through the asynchronous form),
//   except for vlen 254, which was a 254-byte value. The smallest async
//   opcodes: 0x46 PutAsync, 0x40 GetAsync, 0x41 DeleteAsync, 0x43 WriteAsync
//   (0xC6, 0xC1, 0xC3 with sync).
//   klen 255 means an oversized key (kKeyBytesMax + 1 bytes, expected to be
//   refused). vlen 255 means a 100 000-byte value: fill(1). vlen 254 means a
//   huge value: size(1) fill(1), of kValueBytesMax - size KiB (769 KiB to
//   1 MiB), or kValueBytesMax + 1 bytes (refused) for size 255; past
//   kHugeValuesMax per input, a 100 000-byte value instead.
//
// Huge values make writes stall: the batch buffer (just over 2 MiB, sized
// for the largest batch) holds two of them but not three, and a 4 MiB
// segment three to five, so a write often waits for a flush or a segment
// roll while a later small one would fit at once. The engine promises that a
// thread's requests to a shard take effect in the order it made them, so the
// model applies an asynchronous write when it is issued, and an asynchronous
// get or scan must return the model's state at that moment. Callbacks run on the
// executor thread and only record what they got; the fuzzer thread waits for
// all of them (bounded) before a close and at the end of the input, and
// checks them.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/write_batch.h"
#include "engine/format.h"
#include "fuzz/fuzz_util.h"

namespace dmalog::fuzz {
namespace {

using Model = std::map<std::string, std::string>;

constexpr size_t kOpsMax = 64;
constexpr size_t kReopensMax = 4;
constexpr uint8_t kOpKinds = 7;
constexpr uint8_t kSyncBit = 0x80;
constexpr uint8_t kAsyncBit = 0x40;
constexpr uint8_t kOversizedLen = 255;
constexpr uint8_t kLargeLen = 255;
constexpr uint8_t kHugeLen = 254;
constexpr uint8_t kHugeOversized = 255;
constexpr size_t kLargeValueBytes = 100'000;
static_assert(kLargeValueBytes <= format::kValueBytesMax);
constexpr size_t kHugeStepBytes = 1024;
constexpr size_t kHugeValueBytesMin =
    format::kValueBytesMax - (kHugeOversized - 1) * kHugeStepBytes;
// Three huge values never fit in a batch buffer, which is sized for the
// largest batch record plus alignment (engine/log_writer.cc, Init).
static_assert(3 * kHugeValueBytesMin > format::kRecordHeaderBytes + format::kKeyBytesMax +
                                           format::kBatchBytesMax +
                                           2 * format::kWriteAlignmentBytesMax);
// Huge values per input: bounds what an input writes to about 16 MiB (each
// check after a reopen reads every live value twice: a scan and a get).
constexpr size_t kHugeValuesMax = 16;
constexpr uint64_t kScanAllKeysMax = 1u << 20;
constexpr size_t kKeyShownMax = 32;  // Bytes of a key a message shows.
// How long the callbacks of the asynchronous calls may take to run, in all,
// before a drain gives up: well under the fuzz script's 60 s per input.
constexpr auto kCallbacksWaitMax = std::chrono::seconds(20);
constexpr auto kCallbacksPoll = std::chrono::microseconds(100);

Options DbOptions(const std::string& path) {
  Options o;
  o.db_path = path;
  o.shard_count = 1;
  o.segment_size_bytes = format::kSegmentSizeBytesMin;
  o.quiet = true;
  return o;
}

std::string TakeKey(ByteReader& in) {
  const uint8_t len = in.U8();
  if (len == kOversizedLen) return std::string(format::kKeyBytesMax + 1, 'k');
  return in.String(len);
}

bool Oversized(const std::string& key) { return key.size() > format::kKeyBytesMax; }

// A write the engine must refuse with InvalidArgument.
bool Refused(const std::string& key, const std::string& value) {
  return Oversized(key) || value.size() > format::kValueBytesMax;
}

void CheckWriteStatus(const Status& s, bool refused, const std::string& what) {
  if (refused) {
    DMALOG_FUZZ_CHECK(s.IsInvalidArgument(),
                      what + " of an oversized key or value: " + s.ToString());
    return;
  }
  DMALOG_FUZZ_CHECK(s.ok(), what + ": " + s.ToString());
}

// `want` is the model's value for `key`, nullopt when it has none.
void CheckGetResult(const Result<std::string>& got, const std::string& key,
                    const std::optional<std::string>& want, const std::string& what) {
  if (!want) {
    DMALOG_FUZZ_CHECK(!got.ok(), what + " found a key the model does not have");
    DMALOG_FUZZ_CHECK(
        got.status().IsNotFound() || (Oversized(key) && got.status().IsInvalidArgument()),
        what + ": " + got.status().ToString());
    return;
  }
  DMALOG_FUZZ_CHECK(got.ok(), what + ": " + got.status().ToString());
  DMALOG_FUZZ_CHECK(*got == *want, what + " returned a different value (" +
                                       std::to_string(got->size()) + " bytes, the model " +
                                       std::to_string(want->size()) + ")");
}

// Where two scans of the same length first differ, for messages.
std::string FirstDifference(const std::vector<KeyValue>& got, const std::vector<KeyValue>& want) {
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (got[i].key != want[i].key) {
      return "key " + std::to_string(i) + " is '" + got[i].key.substr(0, kKeyShownMax) +
             "', the model's '" + want[i].key.substr(0, kKeyShownMax) + "'";
    }
    if (got[i].value != want[i].value) {
      return "key '" + got[i].key.substr(0, kKeyShownMax) + "' has a " +
             std::to_string(got[i].value.size()) + "-byte value, the model a " +
             std::to_string(want[i].value.size()) + "-byte one";
    }
  }
  return "none found";
}

void CheckScanResult(const Result<std::vector<KeyValue>>& got, const std::vector<KeyValue>& want,
                     const std::string& what) {
  DMALOG_FUZZ_CHECK(got.ok(), what + ": " + got.status().ToString());
  DMALOG_FUZZ_CHECK(got->size() == want.size(), what + " returned " + std::to_string(got->size()) +
                                                    " keys, the model " +
                                                    std::to_string(want.size()));
  DMALOG_FUZZ_CHECK(*got == want, what + " differs from the model: " + FirstDifference(*got, want));
}

// The asynchronous calls made since the last drain: what each expects (kept
// on the fuzzer thread) and what its callback reported (written on the
// executor thread, under a mutex).
class AsyncCalls {
 public:
  Engine::StatusCallback Write(std::string what, bool refused) {
    const size_t slot = Add(Expected{std::move(what), refused, false, {}, {}, {}});
    return
        [this, slot](Status s) { Report(slot, std::move(s), Result<std::string>(std::string())); };
  }

  Engine::GetCallback Get(std::string what, std::string key, std::optional<std::string> want) {
    const size_t slot =
        Add(Expected{std::move(what), false, true, std::move(key), std::move(want), {}});
    return [this, slot](Result<std::string> got) { Report(slot, Status::OK(), std::move(got)); };
  }

  Engine::ScanCallback Scan(std::string what, std::vector<KeyValue> want) {
    const size_t slot = Add(Expected{std::move(what), false, false, {}, {}, std::move(want)});
    return [this, slot](Result<std::vector<KeyValue>> got) { ReportScan(slot, std::move(got)); };
  }

  // Waits until every callback has run (aborting after kCallbacksWaitMax),
  // checks each result, and forgets the calls.
  void DrainAndCheck() {
    const size_t issued = expected_.size();
    const auto deadline = std::chrono::steady_clock::now() + kCallbacksWaitMax;
    while (done_.load(std::memory_order_acquire) < issued) {
      DMALOG_FUZZ_CHECK(std::chrono::steady_clock::now() < deadline,
                        std::to_string(issued - done_.load()) + " of " + std::to_string(issued) +
                            " asynchronous callbacks did not run within " +
                            std::to_string(kCallbacksWaitMax.count()) + " s");
      std::this_thread::sleep_for(kCallbacksPoll);
    }
    std::lock_guard<std::mutex> lock(mu_);
    DMALOG_FUZZ_CHECK(strays_ == 0, "a callback ran for a call already checked");
    for (size_t i = 0; i < issued; ++i) Check(expected_[i], reported_[i]);
    expected_.clear();
    reported_.clear();
    done_.store(0, std::memory_order_relaxed);
  }

 private:
  struct Expected {
    std::string what;  // The call and its op number, for messages.
    bool refused;      // A write that must get InvalidArgument.
    bool get;
    std::string key;                            // A get's key.
    std::optional<std::string> value;           // A get's answer; nullopt: NotFound.
    std::optional<std::vector<KeyValue>> scan;  // A scan's answer.
  };
  struct Reported {
    uint32_t calls = 0;                      // Times the callback ran: 1 once drained.
    Status status;                           // A write's.
    Result<std::string> got{std::string()};  // A get's.
    Result<std::vector<KeyValue>> scanned{std::vector<KeyValue>()};  // A scan's.
  };

  size_t Add(Expected e) {
    expected_.push_back(std::move(e));
    std::lock_guard<std::mutex> lock(mu_);
    reported_.emplace_back();
    return reported_.size() - 1;
  }

  // On the executor thread (or the caller's, for an empty batch).
  void Report(size_t slot, Status s, Result<std::string> got) {
    Record(slot, [&](Reported& r) {
      r.status = std::move(s);
      r.got = std::move(got);
    });
  }
  void ReportScan(size_t slot, Result<std::vector<KeyValue>> got) {
    Record(slot, [&](Reported& r) { r.scanned = std::move(got); });
  }
  template <typename Fill>
  void Record(size_t slot, Fill fill) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (slot >= reported_.size()) {
        ++strays_;
        return;
      }
      Reported& r = reported_[slot];
      ++r.calls;
      fill(r);
    }
    done_.fetch_add(1, std::memory_order_release);
  }

  static void Check(const Expected& e, const Reported& r) {
    DMALOG_FUZZ_CHECK(r.calls == 1,
                      e.what + "'s callback ran " + std::to_string(r.calls) + " times");
    if (e.get) return CheckGetResult(r.got, e.key, e.value, e.what);
    if (e.scan) return CheckScanResult(r.scanned, *e.scan, e.what);
    CheckWriteStatus(r.status, e.refused, e.what);
  }

  std::vector<Expected> expected_;  // Fuzzer thread only.
  std::mutex mu_;
  std::vector<Reported> reported_;  // Guarded by mu_; one per expected_.
  uint64_t strays_ = 0;             // Guarded by mu_.
  std::atomic<size_t> done_{0};     // Callbacks run since the last drain.
};

class Harness {
 public:
  explicit Harness(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    Open();
  }
  ~Harness() {
    if (db_) {
      calls_.DrainAndCheck();
      Status s = db_->Close();
      DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    }
  }

  void Run(ByteReader& in) {
    size_t reopens = 0;
    for (op_ = 0; op_ < kOpsMax && !in.empty(); ++op_) {
      const uint8_t code = in.U8();
      WriteOptions wo;
      wo.sync = (code & kSyncBit) != 0;
      const bool async = (code & kAsyncBit) != 0;
      switch ((code & 0x7F) % kOpKinds) {
        case 0: {
          const std::string key = TakeKey(in);
          Put(wo, async, key, TakeValue(in));
          break;
        }
        case 1:
          Get(async, TakeKey(in));
          break;
        case 2:
          Delete(wo, async, TakeKey(in));
          break;
        case 3:
          Scan(async, in);
          break;
        case 4:
          Batch(wo, async, in);
          break;
        case 5:
          if (reopens++ < kReopensMax) Reopen();
          break;
        case 6:
          Sync(async);
          break;
      }
    }
    calls_.DrainAndCheck();
    CheckAll();
  }

 private:
  void Open() {
    Result<std::unique_ptr<Engine>> db = Engine::Open(DbOptions(path_));
    DMALOG_FUZZ_CHECK(db.ok(), db.status().ToString());
    db_ = std::move(*db);
  }

  void Reopen() {
    calls_.DrainAndCheck();
    Status s = db_->Close();
    DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    db_.reset();
    Open();
    CheckAll();
  }

  std::string TakeValue(ByteReader& in) {
    const uint8_t len = in.U8();
    if (len == kLargeLen) return std::string(kLargeValueBytes, static_cast<char>(in.U8()));
    if (len == kHugeLen) return TakeHugeValue(in);
    return in.String(len);
  }

  std::string TakeHugeValue(ByteReader& in) {
    const uint8_t size = in.U8();
    const char fill = static_cast<char>(in.U8());
    if (huge_values_ == kHugeValuesMax) return std::string(kLargeValueBytes, fill);
    ++huge_values_;
    if (size == kHugeOversized) return std::string(format::kValueBytesMax + 1, fill);
    return std::string(format::kValueBytesMax - size * kHugeStepBytes, fill);
  }

  // "PutAsync #12": the call and the op that made it, for messages.
  std::string What(const char* call) const {
    return std::string(call) + " #" + std::to_string(op_);
  }

  void Put(const WriteOptions& wo, bool async, const std::string& key, const std::string& value) {
    const bool refused = Refused(key, value);
    if (async) {
      db_->PutAsync(wo, key, value, calls_.Write(What("PutAsync"), refused));
    } else {
      CheckWriteStatus(db_->Put(wo, key, value), refused, What("Put"));
    }
    if (!refused) model_[key] = value;
  }

  void Delete(const WriteOptions& wo, bool async, const std::string& key) {
    const bool refused = Oversized(key);
    if (async) {
      db_->DeleteAsync(wo, key, calls_.Write(What("DeleteAsync"), refused));
    } else {
      CheckWriteStatus(db_->Delete(wo, key), refused, What("Delete"));
    }
    if (!refused) model_.erase(key);
  }

  void Get(bool async, const std::string& key) {
    auto it = model_.find(key);
    std::optional<std::string> want;
    if (it != model_.end()) want = it->second;
    if (async) {
      db_->GetAsync(key, calls_.Get(What("GetAsync"), key, std::move(want)));
      return;
    }
    CheckGetResult(db_->Get(key), key, want, What("Get"));
  }

  void Batch(const WriteOptions& wo, bool async, ByteReader& in) {
    const uint8_t count = in.U8();
    WriteBatch batch;
    Model after = model_;
    for (uint8_t i = 0; i < count && !in.empty(); ++i) {
      const bool put = in.U8() & 1;
      const std::string key = TakeKey(in);
      const std::string value = TakeValue(in);
      Status s = put ? batch.Put(key, value) : batch.Delete(key);
      if (Oversized(key)) {
        DMALOG_FUZZ_CHECK(s.IsInvalidArgument(), "oversized batch key: " + s.ToString());
        continue;
      }
      if (!s.ok()) {  // Over the batch's size limit: the batch is unchanged.
        DMALOG_FUZZ_CHECK(s.IsInvalidArgument(), s.ToString());
        continue;
      }
      if (put) {
        after[key] = value;
      } else {
        after.erase(key);
      }
    }
    if (async) {
      db_->WriteAsync(wo, batch, calls_.Write(What("WriteAsync"), false));
    } else {
      CheckWriteStatus(db_->Write(wo, batch), false, What("Write"));
    }
    model_ = std::move(after);
  }

  void Sync(bool async) {
    if (async) return db_->SyncAsync(calls_.Write(What("SyncAsync"), false));
    const Status s = db_->Sync();
    DMALOG_FUZZ_CHECK(s.ok(), What("Sync") + ": " + s.ToString());
  }

  void Scan(bool async, ByteReader& in) {
    const uint8_t from_len = in.U8();
    const uint8_t to_len = in.U8();
    const uint8_t n = in.U8();
    ScanOptions so;
    so.from = in.String(from_len);
    so.to = in.String(to_len);
    so.max_keys = uint64_t{n} + 1;
    if (async) return db_->ScanAsync(so, calls_.Scan(What("ScanAsync"), ModelScan(so)));
    CheckScan(so);
  }

  std::vector<KeyValue> ModelScan(const ScanOptions& so) const {
    std::vector<KeyValue> want;
    for (auto it = model_.lower_bound(so.from);
         it != model_.end() && want.size() < so.max_keys && (so.to.empty() || it->first < so.to);
         ++it) {
      want.push_back(KeyValue{it->first, it->second});
    }
    return want;
  }

  void CheckScan(const ScanOptions& so) {
    CheckScanResult(db_->Scan(so), ModelScan(so), What("Scan"));
  }

  void CheckAll() {
    ScanOptions all;
    all.max_keys = kScanAllKeysMax;
    CheckScan(all);
    for (const auto& [key, value] : model_) {
      Result<std::string> v = db_->Get(key);
      DMALOG_FUZZ_CHECK(v.ok() && *v == value, "Get after reopen");
    }
  }

  const std::string path_;
  // Declared before db_, so it outlives the engine whose callbacks report
  // into it (and it is drained before every close).
  AsyncCalls calls_;
  std::unique_ptr<Engine> db_;
  Model model_;
  size_t op_ = 0;  // The op being run.
  size_t huge_values_ = 0;
};

}  // namespace
}  // namespace dmalog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmalog;
  fuzz::ByteReader in(data, size);
  fuzz::Harness h((fuzz::FuzzDataDir("api_fuzz") / "db").string());
  h.Run(in);
  return 0;
}

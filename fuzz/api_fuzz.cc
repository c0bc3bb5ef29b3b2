// Fuzzes sequences of Engine operations with reopens against a std::map
// model (as oss-fuzz's LevelDB fuzz_db does): put, get, delete, batch,
// scan, close + reopen, sync, on a fresh one-shard database with 4 MiB segments
// under the build tree. Every result must match the model; errors are only
// the documented InvalidArgument for oversized keys and values.
//
// Input: a sequence of operations, each an opcode byte and its operands:
//   opcode % 7 == 0  put:    klen(1) vlen(1) key value   (opcode bit 7: sync)
//                 1  get:    klen(1) key
//                 2  delete: klen(1) key                 (opcode bit 7: sync)
//                 3  scan:   flen(1) tlen(1) n(1) from to (max_keys = n + 1)
//                 4  batch:  count(1) then per entry put?(1) klen(1) vlen(1) key value
//                 5  close and reopen
//                 6  sync
//   klen 255 means an oversized key (kKeyBytesMax + 1 bytes, expected to be
//   refused); vlen 255 means a 100 000-byte value (several blocks).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
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
constexpr uint8_t kOversizedLen = 255;
constexpr size_t kLargeValueBytes = 100'000;
static_assert(kLargeValueBytes <= format::kValueBytesMax);
constexpr uint64_t kScanAllKeysMax = 1u << 20;

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

std::string TakeValue(ByteReader& in) {
  const uint8_t len = in.U8();
  if (len == kOversizedLen) return std::string(kLargeValueBytes, static_cast<char>(in.U8()));
  return in.String(len);
}

bool Oversized(const std::string& key) { return key.size() > format::kKeyBytesMax; }

class Harness {
 public:
  explicit Harness(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    Open();
  }
  ~Harness() {
    if (db_) {
      Status s = db_->Close();
      DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    }
  }

  void Run(ByteReader& in) {
    size_t reopens = 0;
    for (size_t op = 0; op < kOpsMax && !in.empty(); ++op) {
      const uint8_t code = in.U8();
      WriteOptions wo;
      wo.sync = (code & 0x80) != 0;
      switch ((code & 0x7F) % 7) {
        case 0:
          Put(wo, TakeKey(in), TakeValue(in));
          break;
        case 1:
          Get(TakeKey(in));
          break;
        case 2:
          Delete(wo, TakeKey(in));
          break;
        case 3:
          Scan(in);
          break;
        case 4:
          Batch(wo, in);
          break;
        case 5:
          if (reopens++ < kReopensMax) Reopen();
          break;
        case 6: {
          const Status s = db_->Sync();
          DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
          break;
        }
      }
    }
    CheckAll();
  }

 private:
  void Open() {
    Result<std::unique_ptr<Engine>> db = Engine::Open(DbOptions(path_));
    DMALOG_FUZZ_CHECK(db.ok(), db.status().ToString());
    db_ = std::move(*db);
  }

  void Reopen() {
    Status s = db_->Close();
    DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    db_.reset();
    Open();
    CheckAll();
  }

  void Put(const WriteOptions& wo, const std::string& key, const std::string& value) {
    Status s = db_->Put(wo, key, value);
    if (Oversized(key)) {
      DMALOG_FUZZ_CHECK(s.IsInvalidArgument(), "oversized key: " + s.ToString());
      return;
    }
    DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    model_[key] = value;
  }

  void Delete(const WriteOptions& wo, const std::string& key) {
    Status s = db_->Delete(wo, key);
    if (Oversized(key)) {
      DMALOG_FUZZ_CHECK(s.IsInvalidArgument(), "oversized key: " + s.ToString());
      return;
    }
    DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    model_.erase(key);
  }

  void Get(const std::string& key) {
    Result<std::string> v = db_->Get(key);
    auto it = model_.find(key);
    if (it == model_.end()) {
      DMALOG_FUZZ_CHECK(!v.ok(), "Get found a key the model does not have");
      DMALOG_FUZZ_CHECK(
          v.status().IsNotFound() || (Oversized(key) && v.status().IsInvalidArgument()),
          v.status().ToString());
      return;
    }
    DMALOG_FUZZ_CHECK(v.ok(), v.status().ToString());
    DMALOG_FUZZ_CHECK(*v == it->second, "Get returned a different value");
  }

  void Batch(const WriteOptions& wo, ByteReader& in) {
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
    Status s = db_->Write(wo, batch);
    DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
    model_ = std::move(after);
  }

  void Scan(ByteReader& in) {
    const uint8_t from_len = in.U8();
    const uint8_t to_len = in.U8();
    const uint8_t n = in.U8();
    ScanOptions so;
    so.from = in.String(from_len);
    so.to = in.String(to_len);
    so.max_keys = uint64_t{n} + 1;
    CheckScan(so);
  }

  void CheckScan(const ScanOptions& so) {
    Result<std::vector<KeyValue>> got = db_->Scan(so);
    DMALOG_FUZZ_CHECK(got.ok(), got.status().ToString());
    std::vector<KeyValue> want;
    for (auto it = model_.lower_bound(so.from);
         it != model_.end() && want.size() < so.max_keys && (so.to.empty() || it->first < so.to);
         ++it) {
      want.push_back(KeyValue{it->first, it->second});
    }
    DMALOG_FUZZ_CHECK(got->size() == want.size(), "scan returned " + std::to_string(got->size()) +
                                                      " keys, the model " +
                                                      std::to_string(want.size()));
    DMALOG_FUZZ_CHECK(*got == want, "scan differs from the model");
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
  std::unique_ptr<Engine> db_;
  Model model_;
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

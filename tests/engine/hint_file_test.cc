// Hint files (engine/hint_file.h): a database of several 4 MiB segments
// reopened with and without Options::use_hint_files gives the same data;
// damaged, forged, stale and leftover hints are ignored, removed or
// rewritten, and never change what an open returns.
#include "engine/hint_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/write_batch.h"
#include "engine/segment.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SegmentPath;
using testing::SmallDbOptions;

constexpr int kKeys = 1500;
constexpr int kOps = 7000;
constexpr auto kHintWaitMax = std::chrono::seconds(30);

std::string Key(int i) { return "key" + std::to_string(i); }
std::string Value(int op) {
  return std::string(1500 + (op * 37) % 900, static_cast<char>('a' + op % 26));
}

std::string HintPath(const std::string& db, uint64_t id) {
  return db + "/shard-000/" + engine::HintFileName(id);
}

// The highest segment id of shard 0 that holds a data record.
uint64_t LastDataSegment(const std::string& db) {
  uint64_t last = 0;
  for (uint64_t id = 1; std::filesystem::exists(SegmentPath(db, 0, id)); ++id) {
    Result<std::vector<testing::SegmentRecord>> r =
        testing::ReadDataRecords(SegmentPath(db, 0, id));
    if (r.ok() && !r->empty()) last = id;
  }
  return last;
}

// Waits until the shard has written `n` hints (they are written in the
// background some time after each roll).
void WaitForHints(Engine& db, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + kHintWaitMax;
  while (db.Stats().shards[0].hints_written < n) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "hints were not written";
    ASSERT_EQ(db.Stats().shards[0].hint_write_failures, 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Puts, overwrites, deletes and batches over several segments; returns the
// number of sealed segments (all of which have a hint on return).
uint64_t Workload(const Options& o, int first_op) {
  auto db = OpenOrFail(o);
  EXPECT_NE(db, nullptr);
  if (!db) return 0;
  const uint64_t hints_before = LastDataSegment(o.db_path);
  for (int op = first_op; op < first_op + kOps; ++op) {
    const int k = (op * 7919) % kKeys;
    Status s;
    if (op % 50 == 7) {
      s = db->Put({}, "solo" + std::to_string(op), Value(op));  // Written once.
    } else if (op % 13 == 0) {
      s = db->Delete({}, Key(k));
    } else if (op % 29 == 0) {
      WriteBatch b;
      EXPECT_OK(b.Put(Key(k), Value(op)));
      EXPECT_OK(b.Delete(Key((k + 1) % kKeys)));
      EXPECT_OK(b.Put(Key((k + 2) % kKeys), Value(op + 1)));
      s = db->Write({}, b);
    } else {
      s = db->Put(WriteOptions{.sync = op % 5 == 0}, Key(k), Value(op));
    }
    EXPECT_OK(s);
  }
  EXPECT_OK(db->Put({}, "last", "x"));  // Makes every flush before it durable.
  const uint64_t sealed = LastDataSegment(o.db_path) - 1;
  WaitForHints(*db, sealed - (hints_before > 0 ? hints_before - 1 : 0));
  EXPECT_OK(db->Close());
  return sealed;
}

struct Snapshot {
  std::vector<KeyValue> scan;
  std::map<std::string, std::string> gets;  // Value, or "<status>".
  std::vector<std::string> tail;            // "seq type key value-size".
  uint64_t keys = 0;
  uint64_t last_sequence = 0;
};

Snapshot Take(Engine& db) {
  Snapshot s;
  Result<std::vector<KeyValue>> scan =
      db.Scan(ScanOptions{.from = "", .to = "", .max_keys = 100000});
  EXPECT_TRUE(scan.ok()) << scan.status().ToString();
  if (scan.ok()) s.scan = *scan;
  for (int k = 0; k < kKeys; ++k) {
    Result<std::string> v = db.Get(Key(k));
    s.gets[Key(k)] = v.ok() ? *v : "<" + v.status().ToString() + ">";
  }
  Result<std::vector<LogRecord>> tail =
      db.Tail(TailOptions{.shard = 0, .from_sequence = 1, .max_records = 1000000});
  EXPECT_TRUE(tail.ok()) << tail.status().ToString();
  if (tail.ok()) {
    for (const LogRecord& r : *tail) {
      s.tail.push_back(std::to_string(r.sequence) + " " +
                       (r.type == LogRecord::Type::kPut ? "put " : "del ") + r.key + " " +
                       std::to_string(r.value.size()));
    }
  }
  const ShardStats stats = db.Stats().shards[0];
  s.keys = stats.keys;
  s.last_sequence = stats.last_sequence;
  return s;
}

void ExpectSame(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.last_sequence, b.last_sequence);
  EXPECT_TRUE(a.scan == b.scan) << "scan differs";
  EXPECT_TRUE(a.gets == b.gets) << "gets differ";
  EXPECT_TRUE(a.tail == b.tail) << "tail differs";
}

// Opens, takes a snapshot and the shard's stats, closes.
Snapshot OpenAndTake(Options o, bool hints, ShardStats* stats) {
  o.use_hint_files = hints;
  auto db = OpenOrFail(o);
  EXPECT_NE(db, nullptr);
  if (!db) return {};
  Snapshot s = Take(*db);
  *stats = db->Stats().shards[0];
  EXPECT_OK(db->Close());
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The entries' keys point into `bytes`: keep it alive while they are used.
engine::DecodedHint Decode(const std::string& bytes) {
  Result<engine::DecodedHint> d = engine::DecodeHint(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "test.hint");
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : engine::DecodedHint{};
}

void CopyDb(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

// A base database shared by the tests of one process: built once.
class HintFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = SmallDbOptions(dir_.File("base"), 1);
    sealed_ = Workload(base_, 0);
    ASSERT_GE(sealed_, 2u) << "the workload must fill several segments";
    for (uint64_t id = 1; id <= sealed_; ++id) {
      ASSERT_TRUE(std::filesystem::exists(HintPath(base_.db_path, id))) << id;
    }
    ASSERT_FALSE(std::filesystem::exists(HintPath(base_.db_path, sealed_ + 1)));
    ShardStats stats;
    reference_ = OpenAndTake(base_, false, &stats);
    EXPECT_EQ(stats.segments_loaded_from_hints, 0u);
    scan_read_bytes_ = stats.recovery_read_bytes;
    reference_records_ = stats.recovered_records;
  }

  // A copy of the base database in a fresh directory.
  Options Copy(const std::string& name) {
    Options o = base_;
    o.db_path = dir_.File(name);
    CopyDb(base_.db_path, o.db_path);
    return o;
  }

  testing::TestDir dir_;
  Options base_;
  uint64_t sealed_ = 0;
  Snapshot reference_;
  uint64_t scan_read_bytes_ = 0;
  uint64_t reference_records_ = 0;
};

TEST_F(HintFileTest, ReopenWithHintsGivesTheSameDatabase) {
  Options o = Copy("db");
  ShardStats stats;
  Snapshot with = OpenAndTake(o, true, &stats);
  ExpectSame(reference_, with);
  EXPECT_EQ(stats.segments_loaded_from_hints, sealed_);
  EXPECT_EQ(stats.recovered_records, reference_records_);
  // Hints make the open read a small fraction of the log.
  EXPECT_LT(stats.recovery_read_bytes * 4, scan_read_bytes_)
      << stats.recovery_read_bytes << " vs " << scan_read_bytes_;
  // Writing on after a hint-loaded open: more segments, more hints, and
  // both kinds of open still agree.
  o.use_hint_files = true;
  const uint64_t sealed = Workload(o, kOps);
  ASSERT_GT(sealed, sealed_);
  ShardStats scanned_stats;
  Snapshot scanned = OpenAndTake(o, false, &scanned_stats);
  Snapshot hinted = OpenAndTake(o, true, &stats);
  ExpectSame(scanned, hinted);
  EXPECT_EQ(stats.segments_loaded_from_hints, sealed);
  EXPECT_EQ(stats.recovered_records, scanned_stats.recovered_records);
  // Each of those opens came after a clean close, so it read the log only up
  // to the clean-close marker; without the marker, a full scan agrees.
  EXPECT_TRUE(scanned_stats.opened_after_clean_close);
  EXPECT_TRUE(stats.opened_after_clean_close);
  ASSERT_TRUE(std::filesystem::remove(o.db_path + "/shard-000/CLEAN"));
  Snapshot full = OpenAndTake(o, false, &scanned_stats);
  EXPECT_FALSE(scanned_stats.opened_after_clean_close);
  ExpectSame(full, hinted);
}

// Replaces the hint of segment 1 with `bytes`, opens with hints, and
// expects the reference data with segment 1 scanned and its hint gone or
// rewritten valid.
void ExpectBadHintIgnored(const Options& o, const Snapshot& reference, uint64_t sealed) {
  ShardStats stats;
  Snapshot s = OpenAndTake(o, true, &stats);
  ExpectSame(reference, s);
  EXPECT_EQ(stats.segments_loaded_from_hints, sealed - 1);
  const std::string path = HintPath(o.db_path, 1);
  if (std::filesystem::exists(path)) {
    const std::string bytes = ReadFile(path);
    const engine::DecodedHint d = Decode(bytes);
    EXPECT_EQ(d.header.segment_id, 1u);
  }
  Snapshot again = OpenAndTake(o, true, &stats);
  ExpectSame(reference, again);
}

TEST_F(HintFileTest, FlippedByteIsIgnored) {
  Options o = Copy("db");
  std::string hint = ReadFile(HintPath(o.db_path, 1));
  hint[hint.size() / 2] ^= 1;
  WriteFile(HintPath(o.db_path, 1), hint);
  ExpectBadHintIgnored(o, reference_, sealed_);
}

TEST_F(HintFileTest, TruncatedHintIsIgnored) {
  Options o = Copy("db");
  const std::string hint = ReadFile(HintPath(o.db_path, 1));
  WriteFile(HintPath(o.db_path, 1), hint.substr(0, hint.size() - 100));
  ExpectBadHintIgnored(o, reference_, sealed_);
}

TEST_F(HintFileTest, HintOfAnotherSegmentIsIgnored) {
  Options o = Copy("db");
  // A well-formed hint (valid trailer) that names segment 2.
  const std::string hint = ReadFile(HintPath(o.db_path, 1));
  engine::DecodedHint d = Decode(hint);
  d.header.segment_id = 2;
  WriteFile(HintPath(o.db_path, 1), engine::EncodeHint(d.header, d.entries));
  ExpectBadHintIgnored(o, reference_, sealed_);
  // The hint of segment 2 copied over segment 1's, unchanged.
  CopyDb(base_.db_path, o.db_path);
  std::filesystem::copy_file(HintPath(o.db_path, 2), HintPath(o.db_path, 1),
                             std::filesystem::copy_options::overwrite_existing);
  ExpectBadHintIgnored(o, reference_, sealed_);
}

TEST_F(HintFileTest, LeftoverTemporaryAndOrphanHintsAreRemoved) {
  Options o = Copy("db");
  const std::string tmp = HintPath(o.db_path, 1) + ".tmp";
  WriteFile(tmp, "half a hint");
  const std::string orphan = HintPath(o.db_path, 999);
  std::filesystem::copy_file(HintPath(o.db_path, 1), orphan);
  ShardStats stats;
  Snapshot s = OpenAndTake(o, true, &stats);
  ExpectSame(reference_, s);
  EXPECT_EQ(stats.segments_loaded_from_hints, sealed_);
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_FALSE(std::filesystem::exists(orphan));
}

// A forged hint of segment 1 that leaves out one put (its trailer is valid).
// Trusted, it changes what Get returns; with a last-record checksum that no
// longer matches the segment (a segment changed after its hint), the open
// rejects it and scans.
TEST_F(HintFileTest, LastRecordChecksumGuardsAgainstAHintThatDoesNotMatch) {
  Options o = Copy("db");
  const std::string bytes = ReadFile(HintPath(o.db_path, 1));
  engine::DecodedHint d = Decode(bytes);
  ASSERT_GT(d.entries.size(), 10u);
  // A put in the middle of segment 1 of a key written only once.
  size_t victim = d.entries.size();
  for (size_t i = d.entries.size() / 2; i + 1 < d.entries.size(); ++i) {
    if (d.entries[i].key.substr(0, 4) == "solo") {
      victim = i;
      break;
    }
  }
  ASSERT_LT(victim, d.entries.size()) << "no key written only in segment 1";
  const std::string key(d.entries[victim].key);
  std::vector<engine::HintEntry> forged = d.entries;
  forged.erase(forged.begin() + static_cast<std::ptrdiff_t>(victim));
  // Trusted (the checksum matches): the key disappears.
  WriteFile(HintPath(o.db_path, 1), engine::EncodeHint(d.header, forged));
  {
    o.use_hint_files = true;
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    EXPECT_TRUE(db->Get(key).status().IsNotFound()) << "the forged hint was not used";
    bool in_reference = false;
    for (const KeyValue& kv : reference_.scan) in_reference |= kv.key == key;
    EXPECT_TRUE(in_reference) << key;
    EXPECT_OK(db->Close());
  }
  // The same forgery naming another last record: rejected.
  CopyDb(base_.db_path, o.db_path);
  engine::HintHeader h = d.header;
  h.last_record_checksum ^= 1;
  WriteFile(HintPath(o.db_path, 1), engine::EncodeHint(h, forged));
  ExpectBadHintIgnored(o, reference_, sealed_);
}

// The writes to the last segment never landed and the last record of the
// segment before it is torn: recovery repairs that segment's tail, and must
// first remove its (now stale) hint, with or without use_hint_files.
TEST_F(HintFileTest, RepairedTailRemovesTheStaleHint) {
  for (bool hints : {false, true}) {
    SCOPED_TRACE(hints ? "use_hint_files" : "scan");
    Options o = Copy(hints ? "db_hints" : "db_scan");
    const uint64_t last = sealed_ + 1;
    {
      // Zero the last segment's records (its header stays).
      const std::string seg = SegmentPath(o.db_path, 0, last);
      const std::string bytes = ReadFile(seg);
      const size_t keep = format::kSegmentHeaderEncodedBytes;
      std::string zeroed = bytes.substr(0, keep) + std::string(bytes.size() - keep, '\0');
      WriteFile(seg, zeroed);
    }
    Result<std::vector<testing::SegmentRecord>> records =
        testing::ReadDataRecords(SegmentPath(o.db_path, 0, sealed_));
    ASSERT_TRUE(records.ok());
    const testing::SegmentRecord& victim = records->back();
    ASSERT_OK(testing::FlipByte(SegmentPath(o.db_path, 0, sealed_),
                                victim.offset_bytes + victim.encoded_bytes - 1));
    o.use_hint_files = hints;
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    const ShardStats stats = db->Stats().shards[0];
    EXPECT_FALSE(std::filesystem::exists(HintPath(o.db_path, sealed_)));
    EXPECT_NE(stats.recovery_note.find("dropped"), std::string::npos) << stats.recovery_note;
    EXPECT_EQ(stats.last_sequence, victim.sequence - 1);
    if (hints) {
      EXPECT_EQ(stats.segments_loaded_from_hints, sealed_ - 1);
    }
    if (!victim.key.empty()) {
      Result<std::string> v = db->Get(victim.key);
      EXPECT_TRUE(v.ok() || v.status().IsNotFound()) << v.status().ToString();
    }
    EXPECT_OK(db->Close());
  }
}

// point_in_time, scanning, stops at damage in segment 1 and drops the
// segments after it: their hints, and segment 1's, go first.
TEST_F(HintFileTest, PointInTimeDropRemovesHints) {
  Options o = Copy("db");
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadDataRecords(SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(records.ok());
  const testing::SegmentRecord victim = (*records)[records->size() / 2];
  ASSERT_OK(testing::FlipByte(SegmentPath(o.db_path, 0, 1), victim.offset_bytes + 9));
  o.recovery_mode = RecoveryMode::kPointInTime;
  ShardStats stats;
  Snapshot scanned = OpenAndTake(o, false, &stats);
  EXPECT_EQ(stats.last_sequence, victim.sequence - 1);
  for (uint64_t id = 1; id <= sealed_ + 1; ++id) {
    EXPECT_FALSE(std::filesystem::exists(HintPath(o.db_path, id))) << id;
  }
  Snapshot hinted = OpenAndTake(o, true, &stats);
  ExpectSame(scanned, hinted);
  EXPECT_EQ(stats.segments_loaded_from_hints, 0u);
}

// With hints, damage inside a sealed segment is found by the read that
// verifies the record (the documented trade-off): a scan, whose value reads
// run concurrently, reports it as a Corruption naming the segment, and
// every other key still reads back.
TEST_F(HintFileTest, ScanFindsDamageInAHintLoadedSegment) {
  Options o = Copy("db");
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadDataRecords(SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(records.ok());
  // A key written once, so the damaged record is the one the index uses.
  const testing::SegmentRecord* victim = nullptr;
  for (const testing::SegmentRecord& r : *records) {
    if (r.key.rfind("solo", 0) == 0) victim = &r;
  }
  ASSERT_NE(victim, nullptr) << "segment 1 holds no solo key";
  ASSERT_OK(testing::FlipByte(SegmentPath(o.db_path, 0, 1),
                              victim->offset_bytes + victim->encoded_bytes - 1));
  o.use_hint_files = true;
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_GE(db->Stats().shards[0].segments_loaded_from_hints, 1u);
  Result<std::vector<KeyValue>> scan =
      db->Scan(ScanOptions{.from = "", .to = "", .max_keys = 100000});
  ASSERT_FALSE(scan.ok()) << "the scan read the damaged record without noticing";
  EXPECT_TRUE(scan.status().IsCorruption()) << scan.status().ToString();
  EXPECT_NE(scan.status().ToString().find("00000001.seg"), std::string::npos)
      << scan.status().ToString();
  Result<std::string> damaged = db->Get(victim->key);
  EXPECT_TRUE(damaged.status().IsCorruption()) << damaged.status().ToString();
  // The keys before the victim (a range that excludes it) still scan whole.
  Result<std::vector<KeyValue>> before =
      db->Scan(ScanOptions{.from = "", .to = victim->key, .max_keys = 100000});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  std::map<std::string, std::string> expected;
  for (const KeyValue& kv : reference_.scan) {
    if (kv.key < victim->key) expected[kv.key] = kv.value;
  }
  ASSERT_EQ(before->size(), expected.size());
  for (const KeyValue& kv : *before) EXPECT_EQ(expected[kv.key], kv.value) << kv.key;
  EXPECT_OK(db->Close());
}

}  // namespace
}  // namespace dmalog

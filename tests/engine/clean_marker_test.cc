// The clean-close marker (engine/clean_format.h): a clean close records
// where each shard's log ends, and the next open reads the log only up to
// there. These tests check the codec, that the marker is used only when
// the log agrees with it, and the protocol that keeps a marker from hiding
// data: every open removes it before the shard's first write.
#include "engine/clean_marker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "dmalog/engine.h"
#include "engine/clean_format.h"
#include "engine/engine_hooks.h"
#include "engine/format.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using engine::CleanEnd;
using testing::OpenOrFail;
using testing::SmallDbOptions;

std::string Key(int i) { return "key" + std::to_string(i); }
// 3000 of these fill more than one 4 MiB segment.
std::string Value(int i) { return std::string(1500, static_cast<char>('a' + i % 26)); }

std::string MarkerPath(const Options& o, uint32_t shard = 0) {
  char folder[32];
  std::snprintf(folder, sizeof(folder), "/shard-%03u/CLEAN", shard);
  return o.db_path + folder;
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

void Put(Engine& db, int from, int to) {
  for (int i = from; i < to; ++i) ASSERT_OK(db.Put({}, Key(i), Value(i)));
}

// One session: opens, puts keys [from, to), closes cleanly.
void WriteSession(const Options& o, int from, int to) {
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  Put(*db, from, to);
  ASSERT_OK(db->Close());
}

void ExpectKeys(Engine& db, int from, int to) {
  for (int i = from; i < to; ++i) {
    Result<std::string> v = db.Get(Key(i));
    ASSERT_TRUE(v.ok()) << Key(i) << ": " << v.status().ToString();
    ASSERT_EQ(*v, Value(i)) << Key(i);
  }
}

bool OpenedAfterCleanClose(Engine& db, uint32_t shard = 0) {
  return db.Stats().shards.at(shard).opened_after_clean_close;
}

Result<CleanEnd> ReadMarker(const Options& o) {
  Result<io::Directory> dir = io::Directory::Open(o.db_path + "/shard-000");
  if (!dir.ok()) return dir.status();
  Result<std::optional<CleanEnd>> marker = engine::ReadCleanMarker(*dir, 0);
  if (!marker.ok()) return marker.status();
  if (!marker->has_value()) return Status::NotFound("no marker");
  return **marker;
}

void WriteMarker(const Options& o, const std::string& bytes) {
  std::ofstream out(MarkerPath(o), std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << MarkerPath(o);
}

TEST(CleanMarkerCodecTest, RoundTripsAndRejectsEveryDamagedByte) {
  const CleanEnd end{7, 8192, 12345};
  const std::string bytes = engine::EncodeCleanMarker(3, end);
  ASSERT_EQ(bytes.size(), format::kCleanFileBytes);
  Result<CleanEnd> decoded = engine::DecodeCleanMarker(bytes, 3, "CLEAN");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, end);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_TRUE(engine::DecodeCleanMarker(bad, 3, "CLEAN").status().IsCorruption()) << i;
  }
  EXPECT_TRUE(engine::DecodeCleanMarker(bytes, 4, "CLEAN").status().IsCorruption());
  EXPECT_TRUE(engine::DecodeCleanMarker(bytes + "x", 3, "CLEAN").status().IsCorruption());
  EXPECT_TRUE(engine::DecodeCleanMarker(bytes.substr(1), 3, "CLEAN").status().IsCorruption());
}

TEST(CleanMarkerTest, CleanCloseWritesItAndTheNextOpenUsesAndRemovesIt) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    EXPECT_FALSE(OpenedAfterCleanClose(*db)) << "a new database";
    Put(*db, 0, 100);
    ASSERT_OK(db->Close());
  }
  ASSERT_TRUE(Exists(MarkerPath(o)));
  Result<CleanEnd> marker = ReadMarker(o);
  ASSERT_TRUE(marker.ok()) << marker.status().ToString();
  EXPECT_EQ(marker->segment_id, 1u);
  EXPECT_EQ(marker->last_sequence, 100u);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
  EXPECT_FALSE(Exists(MarkerPath(o))) << "removed before the first write";
  ExpectKeys(*db, 0, 100);
  Put(*db, 100, 110);
  ASSERT_OK(db->Close());
  db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 110);
}

TEST(CleanMarkerTest, ASessionWithoutWritesLeavesTheSameMarker) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  Put(*db, 0, 10);
  ASSERT_OK(db->Close());
  Result<CleanEnd> first = ReadMarker(o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectKeys(*db, 0, 10);
  ASSERT_OK(db->Close());
  Result<CleanEnd> second = ReadMarker(o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*first, *second);
  db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
}

TEST(CleanMarkerTest, ItNamesTheSegmentTheLogRolledTo) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  Put(*db, 0, 3000);
  ASSERT_OK(db->Close());
  Result<CleanEnd> marker = ReadMarker(o);
  ASSERT_TRUE(marker.ok()) << marker.status().ToString();
  EXPECT_GE(marker->segment_id, 2u);
  db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 3000);
  const uint32_t align = db->Stats().write_alignment_bytes;
  ASSERT_OK(db->Close());

  // A forged marker that ends the log with segment 1 agrees with segment 1
  // alone; the data at the start of segment 2 tells it is not the end.
  Result<std::vector<testing::SegmentRecord>> first =
      testing::ReadSegmentRecords(testing::SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  uint64_t last_sequence = 0;
  for (const testing::SegmentRecord& r : *first) {
    if (r.type == format::kPutType) last_sequence = std::max(last_sequence, r.sequence);
  }
  const uint64_t records_end = first->back().offset_bytes + first->back().encoded_bytes;
  const CleanEnd forged{1, (records_end + align - 1) / align * align, last_sequence};
  WriteMarker(o, engine::EncodeCleanMarker(0, forged));
  db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 3000);
}

TEST(CleanMarkerTest, WritesWithoutSyncAreInTheCleanEnd) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    WriteOptions no_sync;
    no_sync.sync = false;
    for (int i = 0; i < 200; ++i) ASSERT_OK(db->Put(no_sync, Key(i), Value(i)));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 200);
}

// The trap the protocol closes: session 2 appends after session 1's clean
// end and rolls into the spare segment, then crashes. Had session 1's
// marker survived, the next open would stop at session 1's end and lose
// session 2's acknowledged writes.
TEST(CleanMarkerTest, AMarkerNeverHidesTheWritesOfALaterSession) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  ASSERT_NO_FATAL_FAILURE(WriteSession(o, 0, 100));
  ASSERT_TRUE(Exists(MarkerPath(o)));
  {
    testing::FaultHarness harness(1);
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    Put(**db, 100, 3000);  // Rolls past segment 1: see Value().
    ASSERT_GE((*db)->Stats().shards.at(0).segments, 2u);
    Result<io::CrashReport> report = harness.Crash(**db, 0, io::CrashOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    (*db)->Close().IgnoreError();  // Every I/O fails after the crash.
  }
  EXPECT_FALSE(Exists(MarkerPath(o))) << "a crashed session leaves no marker";
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 3000);
}

// A flush that leaves fewer bytes of its last block than a record header
// ends in zeros, not a padding record. After a crash (no close record), a
// session that writes nothing leaves a marker whose end is the next aligned
// offset: the next open must still use it.
TEST(CleanMarkerTest, ALogEndingInAShortGapKeepsItsMarker) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  uint32_t align = 0;
  {
    testing::FaultHarness harness(2);
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    align = (*db)->Stats().write_alignment_bytes;
    ASSERT_GT(align, format::kRecordHeaderBytes + 1 + 16);
    ASSERT_OK((*db)->Put({}, "k", std::string(align - format::kRecordHeaderBytes - 1 - 16, 'v')));
    Result<io::CrashReport> report = harness.Crash(**db, 0, io::CrashOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    (*db)->Close().IgnoreError();  // Every I/O fails after the crash.
  }
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadSegmentRecords(testing::SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 1u);
  ASSERT_EQ(records->back().offset_bytes + records->back().encoded_bytes, 2 * align - 16);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    EXPECT_FALSE(OpenedAfterCleanClose(*db));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db));
  EXPECT_EQ(db->Get("k").value(), std::string(align - format::kRecordHeaderBytes - 1 - 16, 'v'));
}

TEST(CleanMarkerTest, AMarkerTheLogDisagreesWithIsIgnoredAndRemoved) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  ASSERT_NO_FATAL_FAILURE(WriteSession(o, 0, 50));
  Result<CleanEnd> good = ReadMarker(o);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  uint32_t align = 0;
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    align = db->Stats().write_alignment_bytes;
    ASSERT_OK(db->Close());
  }
  const CleanEnd wrong_sequence{good->segment_id, good->end_bytes, good->last_sequence + 1};
  // Where the last flush ended: the log up to it is clean and holds the last
  // sequence; only the close record's block after it tells.
  const CleanEnd short_end{good->segment_id, good->end_bytes - align, good->last_sequence};
  const CleanEnd long_end{good->segment_id, good->end_bytes + 4096, good->last_sequence};
  const CleanEnd missing_segment{good->segment_id + 9, good->end_bytes, good->last_sequence};
  const CleanEnd unaligned_end{good->segment_id, good->end_bytes + 1, good->last_sequence};
  int case_number = 0;
  for (const std::string& bytes :
       {engine::EncodeCleanMarker(0, wrong_sequence), engine::EncodeCleanMarker(0, short_end),
        engine::EncodeCleanMarker(0, long_end), engine::EncodeCleanMarker(0, missing_segment),
        engine::EncodeCleanMarker(0, unaligned_end), engine::EncodeCleanMarker(1, *good),
        std::string("not a marker")}) {
    SCOPED_TRACE("case " + std::to_string(case_number++));
    WriteMarker(o, bytes);
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    EXPECT_FALSE(OpenedAfterCleanClose(*db));
    EXPECT_FALSE(Exists(MarkerPath(o)));
    ExpectKeys(*db, 0, 50);
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db)) << "each clean close wrote a good marker again";
}

// The close record is what makes the end clean: if its write fails, Close
// leaves no marker, and the next open reads the whole log.
TEST(CleanMarkerTest, AFailedCloseRecordLeavesNoMarker) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  // The first session prepares the spare segment, so that the only write
  // of the second session's close is its close record.
  ASSERT_NO_FATAL_FAILURE(WriteSession(o, 0, 50));
  {
    testing::FaultHarness harness(3);
    Result<std::unique_ptr<Engine>> db = engine::OpenEngine(o, harness.Hooks());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    EXPECT_TRUE(OpenedAfterCleanClose(**db));
    ASSERT_NO_FATAL_FAILURE(Put(**db, 50, 60));
    ASSERT_OK(harness.InjectAt(**db, 0, 1, io::FaultSpec::Eio(io::OpFilter::kWrite)));
    (*db)->Close().IgnoreError();  // Whether Close reports it is not the point.
  }
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadSegmentRecords(testing::SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_FALSE(records->empty());
  EXPECT_NE(records->back().type, format::kCloseType) << "the injected error hit another write";
  EXPECT_FALSE(Exists(MarkerPath(o)));
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(OpenedAfterCleanClose(*db));
  ExpectKeys(*db, 0, 60);
}

// An open that fails on one shard's damage loses nothing: the shard that
// failed keeps its marker (its recovery changed nothing), and the shard
// that recovered removed its own before the open gave up, so its next open
// reads its whole log. Once the damage is undone, every key is back.
TEST(CleanMarkerTest, AnOpenThatFailsOnOneShardKeepsEveryShardsData) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 2);
  ASSERT_NO_FATAL_FAILURE(WriteSession(o, 0, 200));
  ASSERT_TRUE(Exists(MarkerPath(o, 0)));
  ASSERT_TRUE(Exists(MarkerPath(o, 1)));
  const std::string segment = testing::SegmentPath(o.db_path, 1, 1);
  Result<std::vector<testing::SegmentRecord>> records = testing::ReadDataRecords(segment);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_GE(records->size(), 10u);
  // Inside the value of a record in the middle of shard 1's log.
  const testing::SegmentRecord& victim = (*records)[records->size() / 2];
  const uint64_t at = victim.offset_bytes + victim.encoded_bytes - 10;
  ASSERT_OK(testing::FlipByte(segment, at));
  Result<std::unique_ptr<Engine>> failed = Engine::Open(o);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.status().IsCorruption()) << failed.status().ToString();
  EXPECT_NE(failed.status().ToString().find("offset"), std::string::npos)
      << failed.status().ToString();
  EXPECT_FALSE(Exists(MarkerPath(o, 0))) << "shard 0 recovered, and removed its marker";
  EXPECT_TRUE(Exists(MarkerPath(o, 1))) << "shard 1 changed nothing";
  ASSERT_OK(testing::FlipByte(segment, at));
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(OpenedAfterCleanClose(*db, 0));
  EXPECT_TRUE(OpenedAfterCleanClose(*db, 1));
  ExpectKeys(*db, 0, 200);
}

// Found by recovery_fuzz: a torn tail in segment 1 ends the scan there, and
// the spare segment 2 held damage (no valid record). Recovery must zero it,
// or the next open after a clean close would refuse the marker (it checks
// that the later segments start with zeros) and read the whole log again.
TEST(CleanMarkerTest, ARepairedTornTailLeavesLaterSegmentsClean) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  ASSERT_NO_FATAL_FAILURE(WriteSession(o, 0, 100));
  ASSERT_TRUE(std::filesystem::remove(MarkerPath(o)));
  const std::string first = testing::SegmentPath(o.db_path, 0, 1);
  const std::string spare = testing::SegmentPath(o.db_path, 0, 2);
  ASSERT_TRUE(Exists(spare));
  Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(first);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  auto close = std::find_if(records->begin(), records->end(), [](const testing::SegmentRecord& r) {
    return r.type == format::kCloseType;
  });
  ASSERT_NE(close, records->end());
  // The close record torn (a crash during it), and damage in the spare.
  ASSERT_OK(testing::FlipByte(first, close->offset_bytes + 3));
  ASSERT_OK(testing::FlipByte(spare, records->front().offset_bytes + 5));
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    EXPECT_FALSE(OpenedAfterCleanClose(*db));
    EXPECT_NE(db->Stats().shards.at(0).recovery_note.find("00000002.seg"), std::string::npos)
        << db->Stats().shards.at(0).recovery_note;
    ExpectKeys(*db, 0, 100);
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(OpenedAfterCleanClose(*db)) << db->Stats().shards.at(0).recovery_note;
  ExpectKeys(*db, 0, 100);
}

TEST(CleanMarkerTest, AnInterruptedMarkerWriteIsTidiedAway) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Close());
  }
  WriteMarker(o, "partial");
  std::filesystem::rename(MarkerPath(o), MarkerPath(o) + ".tmp");
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(Exists(MarkerPath(o) + ".tmp"));
}

}  // namespace
}  // namespace dmalog

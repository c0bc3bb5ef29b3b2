// A flush torn out of order: a crash can leave any subset of one write's
// sectors on the disk, so the flush in flight may read as a hole followed by
// some of its own valid records. Those records start no flush
// (format::kRecordFlagFlushStart is on the first record of each flush only),
// so recovery drops them as the torn tail. A hole followed by a record that
// does start a flush is a lost acknowledged write: corruption in the middle.
// Segments of format version 1 mark no flush starts and keep the old rule.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "engine/format.h"
#include "engine/record.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SegmentPath;
using testing::SmallDbOptions;

constexpr int kRecords = 20;
constexpr uint64_t kTornSequence = 1'000'000;  // Above every written sequence.

std::string Key(int i) { return "key" + std::to_string(i); }

// Puts keys [first, first + count), each a flush of its own, and closes.
void WritePuts(const Options& o, int first, int count) {
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = first; i < first + count; ++i) ASSERT_OK(db->Put({}, Key(i), "acknowledged"));
  ASSERT_OK(db->Close());
}

// Makes segment file `path` version 1, as an older build would have left
// it: the header says 1 and no record carries a flag.
void MakeVersion1(const std::string& path) {
  Result<engine::SegmentHeader> header = testing::ReadSegmentHeader(path);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  header->format_version = 1;
  ASSERT_OK(testing::WriteSegmentHeader(path, *header));
  Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(path);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  for (const testing::SegmentRecord& r : *records) {
    if (r.flags == 0) continue;
    Result<std::vector<uint8_t>> bytes = testing::ReadAt(path, r.offset_bytes, r.encoded_bytes);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    const engine::DecodeResult d = engine::DecodeRecord(*bytes, header->segment_id);
    ASSERT_EQ(d.outcome, engine::DecodeOutcome::kRecord);
    std::vector<uint8_t> unflagged(r.encoded_bytes);
    if (r.type == format::kCloseType) {
      engine::EncodeClose(unflagged, header->segment_id, d.record.sequence, /*flags=*/0);
    } else {
      engine::EncodeRecord(unflagged, header->segment_id, d.record.type, d.record.sequence,
                           d.record.key, d.record.value, /*flags=*/0);
    }
    ASSERT_OK(testing::WriteAt(path, unflagged, r.offset_bytes));
  }
}

class TornFlushTest : public ::testing::Test {
 protected:
  // Writes kRecords acknowledged puts, closes, then turns the clean end into
  // a crash during one more flush: the close record is gone, the flush's
  // first sector never reached the disk, and its next sector holds a valid
  // record carrying `flags`.
  void SetUpLog(uint8_t flags) {
    o_ = SmallDbOptions(dir_.File("db"), 1);
    seg_ = SegmentPath(o_.db_path, 0, 1);
    WritePuts(o_, 0, kRecords);
    Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(seg_);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    const testing::SegmentRecord* close = nullptr;
    for (const testing::SegmentRecord& r : *records) {
      if (r.type == format::kCloseType) close = &r;
    }
    ASSERT_NE(close, nullptr) << "a clean close writes a close record";
    Result<engine::SegmentHeader> header = testing::ReadSegmentHeader(seg_);
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    header_ = *header;
    const uint32_t align = header_.write_alignment_bytes;
    hole_offset_ = close->offset_bytes;  // The torn flush starts where the close was.
    ASSERT_EQ(hole_offset_ % align, 0u);
    std::vector<uint8_t> torn(2 * align, 0);
    const std::string value = "never acknowledged";
    engine::EncodeRecord(std::span<uint8_t>(torn.data() + align, align), header_.segment_id,
                         format::kPutType, kTornSequence, "torn", value, flags);
    ASSERT_OK(testing::WriteAt(seg_, torn, hole_offset_));
  }

  void ExpectAcknowledged(Engine& db) {
    for (int i = 0; i < kRecords; ++i) EXPECT_EQ(*db.Get(Key(i)), "acknowledged") << Key(i);
  }

  void ExpectCorruptionAtHole() {
    Result<std::unique_ptr<Engine>> db = Engine::Open(o_);
    ASSERT_FALSE(db.ok()) << "a hole before a later flush must not read as the tail";
    EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
    EXPECT_NE(db.status().ToString().find("offset " + std::to_string(hole_offset_)),
              std::string::npos)
        << db.status().ToString();
  }

  testing::TestDir dir_;
  Options o_;
  std::string seg_;
  engine::SegmentHeader header_;
  uint64_t hole_offset_ = 0;
};

// The writer marks the first record of each flush, and only that one: here
// each blocking put is a flush of its own (data record, then padding), and
// a clean close is one more.
TEST(FlushStartFlagTest, TheFirstRecordOfEachFlushCarriesIt) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  WritePuts(o, 0, kRecords);
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadSegmentRecords(SegmentPath(o.db_path, 0, 1));
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  int flush_starts = 0;
  for (const testing::SegmentRecord& r : *records) {
    const bool marked = (r.flags & format::kRecordFlagFlushStart) != 0;
    EXPECT_EQ(marked, r.type != format::kPaddingType) << "record at " << r.offset_bytes;
    flush_starts += marked ? 1 : 0;
  }
  EXPECT_EQ(flush_starts, kRecords + 1);  // The puts and the close record.
}

// A version-1 segment carried over from an older database keeps its
// format: the writer flags nothing in it (a version-1 reader would take a
// flag for a bad header), and the records read back.
TEST(FlushStartFlagTest, AVersion1SegmentGetsNoFlags) {
  testing::TestDir dir;
  const Options o = SmallDbOptions(dir.File("db"), 1);
  const std::string seg = SegmentPath(o.db_path, 0, 1);
  WritePuts(o, 0, kRecords);
  MakeVersion1(seg);
  WritePuts(o, kRecords, kRecords);  // The new build, writing into it.
  Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(seg);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  int data_records = 0;
  for (const testing::SegmentRecord& r : *records) {
    EXPECT_EQ(r.flags, 0) << "record at " << r.offset_bytes << " in a version-1 segment";
    data_records += r.type == format::kPutType ? 1 : 0;
  }
  EXPECT_EQ(data_records, 2 * kRecords);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < 2 * kRecords; ++i) EXPECT_EQ(*db->Get(Key(i)), "acknowledged") << Key(i);
}

TEST_F(TornFlushTest, RecordsAfterAHoleThatStartNoFlushAreTheTornTail) {
  SetUpLog(/*flags=*/0);
  {
    auto db = OpenOrFail(o_);
    ASSERT_NE(db, nullptr);
    ExpectAcknowledged(*db);
    EXPECT_TRUE(db->Get("torn").status().IsNotFound());
    const ShardStats stats = db->Stats().shards.at(0);
    EXPECT_NE(stats.recovery_note.find("at the tail"), std::string::npos) << stats.recovery_note;
    EXPECT_GT(stats.recovery_dropped_bytes, 0u);
    ASSERT_OK(db->Put({}, "after", "repair"));
    ASSERT_OK(db->Close());
  }
  // The drop was made permanent: even absolute_consistency finds no damage.
  o_.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  auto db = OpenOrFail(o_);
  ASSERT_NE(db, nullptr);
  ExpectAcknowledged(*db);
  EXPECT_EQ(*db->Get("after"), "repair");
  EXPECT_TRUE(db->Get("torn").status().IsNotFound());
}

TEST_F(TornFlushTest, AFlushStartAfterAHoleIsCorruption) {
  SetUpLog(format::kRecordFlagFlushStart);
  ExpectCorruptionAtHole();
}

// A flush never spans segments: any valid record in a later segment (even
// one that starts no flush) was written after the damaged flush completed.
TEST_F(TornFlushTest, AValidRecordInALaterSegmentMakesAHoleCorruption) {
  SetUpLog(/*flags=*/0);
  const std::string next = SegmentPath(o_.db_path, 0, 2);  // The spare made ahead of need.
  const uint32_t align = header_.write_alignment_bytes;
  std::vector<uint8_t> block(align, 0);
  engine::EncodeRecord(std::span<uint8_t>(block.data(), align), header_.segment_id + 1,
                       format::kPutType, kTornSequence + 1, "later", "segment", /*flags=*/0);
  ASSERT_OK(testing::WriteAt(next, block, align));
  ExpectCorruptionAtHole();
}

TEST_F(TornFlushTest, Version1SegmentsKeepTreatingAnyRecordAfterAHoleAsCorruption) {
  SetUpLog(/*flags=*/0);
  MakeVersion1(seg_);
  ExpectCorruptionAtHole();
}

}  // namespace
}  // namespace dmalog

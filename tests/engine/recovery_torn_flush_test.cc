// A flush torn out of order: a crash can leave any subset of one write's
// sectors on the disk, so the flush in flight may read as a hole followed by
// some of its own valid records. Those records start no flush
// (format::kRecordFlagFlushStart is on the first record of each flush only),
// so recovery drops them as the torn tail. A hole followed by a record that
// does start a flush is a lost acknowledged write: corruption in the middle.
// Segments of format version 1 mark no flush starts and keep the old rule.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

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

Status PwriteFile(const std::string& path, const std::vector<uint8_t>& bytes, uint64_t offset) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path);
  Status s;
  if (pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) !=
          static_cast<ssize_t>(bytes.size()) ||
      fsync(fd) != 0) {
    s = Status::IOError("pwrite " + path);
  }
  close(fd);
  return s;
}

Result<std::vector<uint8_t>> PreadFile(const std::string& path, uint64_t offset, size_t n) {
  std::vector<uint8_t> bytes(n);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path);
  const bool ok = pread(fd, bytes.data(), n, static_cast<off_t>(offset)) == static_cast<ssize_t>(n);
  close(fd);
  if (!ok) return Status::IOError("pread " + path);
  return bytes;
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
    {
      auto db = OpenOrFail(o_);
      ASSERT_NE(db, nullptr);
      for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({}, Key(i), "acknowledged"));
      ASSERT_OK(db->Close());
    }
    Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(seg_);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    const testing::SegmentRecord* close = nullptr;
    for (const testing::SegmentRecord& r : *records) {
      if (r.type == format::kCloseType) close = &r;
    }
    ASSERT_NE(close, nullptr) << "a clean close writes a close record";
    Result<std::vector<uint8_t>> first = PreadFile(seg_, 0, format::kSegmentHeaderEncodedBytes);
    ASSERT_TRUE(first.ok());
    Result<engine::SegmentHeader> header = engine::DecodeSegmentHeader(*first, seg_);
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    header_ = *header;
    const uint32_t align = header_.write_alignment_bytes;
    hole_offset_ = close->offset_bytes;  // The torn flush starts where the close was.
    ASSERT_EQ(hole_offset_ % align, 0u);
    std::vector<uint8_t> torn(2 * align, 0);
    const std::string value = "never acknowledged";
    engine::EncodeRecord(std::span<uint8_t>(torn.data() + align, align), header_.segment_id,
                         format::kPutType, kTornSequence, "torn", value, flags);
    ASSERT_OK(PwriteFile(seg_, torn, hole_offset_));
  }

  // Rewrites the segment's header as format version 1 (no flush starts).
  void MakeVersion1() {
    engine::SegmentHeader h = header_;
    h.format_version = 1;
    std::vector<uint8_t> bytes(format::kSegmentHeaderEncodedBytes);
    engine::EncodeSegmentHeader(bytes, h);
    ASSERT_OK(PwriteFile(seg_, bytes, 0));
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
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({}, Key(i), "acknowledged"));
    ASSERT_OK(db->Close());
  }
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
  for (int session = 0; session < 2; ++session) {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({}, Key(session * kRecords + i), "v"));
    ASSERT_OK(db->Close());
    if (session > 0) break;
    // Make the segment version 1, as an older build would have left it,
    // with no flags on what it holds.
    Result<std::vector<uint8_t>> first = PreadFile(seg, 0, format::kSegmentHeaderEncodedBytes);
    ASSERT_TRUE(first.ok());
    Result<engine::SegmentHeader> header = engine::DecodeSegmentHeader(*first, seg);
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    header->format_version = 1;
    std::vector<uint8_t> bytes(format::kSegmentHeaderEncodedBytes);
    engine::EncodeSegmentHeader(bytes, *header);
    ASSERT_OK(PwriteFile(seg, bytes, 0));
    Result<std::vector<testing::SegmentRecord>> records = testing::ReadSegmentRecords(seg);
    ASSERT_TRUE(records.ok());
    for (const testing::SegmentRecord& r : *records) {
      if (r.flags == 0) continue;
      Result<std::vector<uint8_t>> got = PreadFile(seg, r.offset_bytes, r.encoded_bytes);
      ASSERT_TRUE(got.ok());
      std::vector<uint8_t> again(r.encoded_bytes);
      const engine::DecodeResult d = engine::DecodeRecord(*got, header->segment_id);
      ASSERT_EQ(d.outcome, engine::DecodeOutcome::kRecord);
      if (r.type == format::kCloseType) {
        engine::EncodeClose(again, header->segment_id, d.record.sequence, 0);
      } else {
        engine::EncodeRecord(again, header->segment_id, d.record.type, d.record.sequence,
                             d.record.key, d.record.value, 0);
      }
      ASSERT_OK(PwriteFile(seg, again, r.offset_bytes));
    }
  }
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
  for (int i = 0; i < 2 * kRecords; ++i) EXPECT_EQ(*db->Get(Key(i)), "v") << Key(i);
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
  ASSERT_OK(PwriteFile(next, block, align));
  ExpectCorruptionAtHole();
}

TEST_F(TornFlushTest, Version1SegmentsKeepTreatingAnyRecordAfterAHoleAsCorruption) {
  SetUpLog(/*flags=*/0);
  MakeVersion1();
  ExpectCorruptionAtHole();
}

}  // namespace
}  // namespace dmalog

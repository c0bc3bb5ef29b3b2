// Regression tests for two bugs recovery_fuzz found.
//
// First: a log whose last valid
// record ends inside an alignment block, followed by zeros (the flush's
// padding record was lost: a torn write, or a sector that never reached
// the disk), recovered as a clean end. New writes then started at the next
// aligned offset, and the zero gap before them read as "unwritten space (a
// lost write)" in the middle of the log: the next open failed with
// Corruption although every acknowledged write was intact.
//
// Second: a segment file that ends a few zero bytes (fewer than a record
// header) past an alignment boundary read as a torn record there. The
// default mode dropped it and found nothing to zero, so absolute_consistency
// refused the same, repaired, file ever after.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "engine/format.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog {
namespace {

using testing::OpenOrFail;
using testing::SegmentPath;
using testing::SmallDbOptions;

constexpr int kRecords = 5;

// Writes kRecords puts into the database `o` names and closes it; returns
// the records of shard 0's first segment (padding included).
Result<std::vector<testing::SegmentRecord>> WriteRecordsAndList(const Options& o) {
  std::unique_ptr<Engine> db = OpenOrFail(o);
  if (db == nullptr) return Status::IOError("cannot open " + o.db_path);
  for (int i = 0; i < kRecords; ++i) {
    Status s = db->Put({}, "key" + std::to_string(i), "value" + std::to_string(i));
    if (!s.ok()) return s;
  }
  Status s = db->Close();
  if (!s.ok()) return s;
  return testing::ReadSegmentRecords(SegmentPath(o.db_path, 0, 1));
}

// Every record WriteRecordsAndList wrote reads back.
void ExpectRecords(Engine& db) {
  for (int i = 0; i < kRecords; ++i) {
    Result<std::string> v = db.Get("key" + std::to_string(i));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, "value" + std::to_string(i));
  }
}

TEST(RecoveryUnalignedEndTest, WritesAfterALostPaddingRecordReopen) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  // Lose the padding record that ends the last flush.
  const std::string seg = SegmentPath(o.db_path, 0, 1);
  Result<std::vector<testing::SegmentRecord>> records = WriteRecordsAndList(o);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_FALSE(records->empty());
  const testing::SegmentRecord& last = records->back();
  ASSERT_EQ(last.type, format::kPaddingType) << "every flush ends with padding";
  ASSERT_OK(testing::ZeroRange(seg, last.offset_bytes, last.encoded_bytes));

  for (RecoveryMode mode : {RecoveryMode::kTolerateCorruptedTailRecords,
                            RecoveryMode::kAbsoluteConsistency, RecoveryMode::kPointInTime}) {
    SCOPED_TRACE(RecoveryModeName(mode));
    o.recovery_mode = mode;
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    const std::string key = std::string("after-") + RecoveryModeName(mode);
    ASSERT_OK(db->Put({}, key, "new"));
    ASSERT_OK(db->Close());
  }
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectRecords(*db);
  EXPECT_EQ(*db->Get("after-point_in_time"), "new");
  EXPECT_EQ(*db->Get("after-tolerate_corrupted_tail_records"), "new");
}

TEST(RecoveryUnalignedEndTest, ShortFileEndingInZerosIsACleanEnd) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  // Cut the preallocated (zero) space off two bytes past the last record
  // (every flush ends on an alignment boundary, padding included).
  const std::string seg = SegmentPath(o.db_path, 0, 1);
  Result<std::vector<testing::SegmentRecord>> records = WriteRecordsAndList(o);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_FALSE(records->empty());
  const uint64_t data_end = records->back().offset_bytes + records->back().encoded_bytes;
  constexpr uint64_t kSectorBytes = 512;  // The smallest alignment a device asks for.
  ASSERT_EQ(data_end % kSectorBytes, 0u) << data_end;
  constexpr uint64_t kZeroTailBytes = 2;
  static_assert(kZeroTailBytes < format::kRecordHeaderBytes, "less than a header");
  const uint64_t cut = data_end + kZeroTailBytes;
  ASSERT_EQ(truncate(seg.c_str(), static_cast<off_t>(cut)), 0) << seg;

  // Each mode opens it as it is, with every record, and takes a new write.
  for (RecoveryMode mode :
       {RecoveryMode::kAbsoluteConsistency, RecoveryMode::kTolerateCorruptedTailRecords,
        RecoveryMode::kAbsoluteConsistency}) {
    SCOPED_TRACE(RecoveryModeName(mode));
    o.recovery_mode = mode;
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ExpectRecords(*db);
    ASSERT_OK(db->Close());
  }
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Put({}, "after", "new"));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*db->Get("after"), "new");
  EXPECT_EQ(*db->Get("key0"), "value0");
}

}  // namespace
}  // namespace dmalog

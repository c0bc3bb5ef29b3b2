// The close record (format::kCloseType): a clean close writes it after the
// shard's last flush, so damage to the last acknowledged flush is reported
// as damage in the middle of the log instead of being dropped as a torn
// tail. After a crash (no close record) the same damage still reads as a
// torn tail: nothing on disk tells it from a write the crash tore.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

constexpr int kRecords = 40;

std::string Key(int i) { return "key" + std::to_string(i); }
std::string Value(int i) { return std::string(100 + i, static_cast<char>('a' + i % 26)); }

void WriteRecordsAndClose(const Options& o) {
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({}, Key(i), Value(i)));
  ASSERT_OK(db->Close());
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Zeroes `n` bytes of `path` at `offset_bytes`.
void ZeroBytes(const std::string& path, uint64_t offset_bytes, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekp(static_cast<std::streamoff>(offset_bytes));
  const std::string zeros(n, '\0');
  f.write(zeros.data(), static_cast<std::streamsize>(n));
  ASSERT_TRUE(f.good()) << path;
}

class CleanCloseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = SmallDbOptions(dir_.File("db"), 1);
    WriteRecordsAndClose(options_);
    Result<std::vector<testing::SegmentRecord>> all =
        testing::ReadSegmentRecords(SegmentPath(options_.db_path, 0, 1));
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    records_ = *all;
  }
  // The last data record and the close record after it.
  const testing::SegmentRecord* Last(uint8_t type) const {
    const testing::SegmentRecord* found = nullptr;
    for (const testing::SegmentRecord& r : records_) {
      if (r.type == type) found = &r;
    }
    return found;
  }
  // Flips a byte inside the value of the last put: its header still parses.
  void DamageLastPut() {
    const testing::SegmentRecord* last = Last(format::kPutType);
    ASSERT_NE(last, nullptr);
    ASSERT_EQ(last->key, Key(kRecords - 1));
    ASSERT_OK(testing::FlipByte(SegmentPath(options_.db_path, 0, 1),
                                last->offset_bytes + last->encoded_bytes - 1));
  }

  testing::TestDir dir_;
  Options options_;
  std::vector<testing::SegmentRecord> records_;
};

TEST_F(CleanCloseTest, CloseWritesACloseRecordAfterTheLastFlush) {
  const testing::SegmentRecord* put = Last(format::kPutType);
  const testing::SegmentRecord* close = Last(format::kCloseType);
  ASSERT_NE(put, nullptr);
  ASSERT_NE(close, nullptr) << "a clean close wrote no close record";
  EXPECT_GT(close->offset_bytes, put->offset_bytes);
  EXPECT_EQ(close->sequence, put->sequence) << "it carries the shard's last sequence";
  EXPECT_EQ(&records_.back() - close, 1) << "only its block's padding follows it";
  // An open and close that write nothing add nothing.
  const std::string before = ReadWholeFile(SegmentPath(options_.db_path, 0, 1));
  {
    auto db = OpenOrFail(options_);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(*db->Get(Key(kRecords - 1)), Value(kRecords - 1));
    ASSERT_OK(db->Close());
  }
  EXPECT_TRUE(before == ReadWholeFile(SegmentPath(options_.db_path, 0, 1)))
      << "a read-only session changed the segment";
}

TEST_F(CleanCloseTest, DamageToTheLastFlushIsReportedAfterACleanClose) {
  DamageLastPut();
  Result<std::unique_ptr<Engine>> db = Engine::Open(options_);
  ASSERT_FALSE(db.ok()) << "damage to acknowledged data was dropped as a torn tail";
  EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
  EXPECT_NE(db.status().ToString().find(SegmentPath(options_.db_path, 0, 1)), std::string::npos)
      << db.status().ToString();
  // point_in_time keeps everything before the damage.
  Options o = options_;
  o.recovery_mode = RecoveryMode::kPointInTime;
  auto recovered = OpenOrFail(o);
  ASSERT_NE(recovered, nullptr);
  for (int i = 0; i + 1 < kRecords; ++i) EXPECT_EQ(*recovered->Get(Key(i)), Value(i));
  EXPECT_TRUE(recovered->Get(Key(kRecords - 1)).status().IsNotFound());
}

TEST_F(CleanCloseTest, WithoutACloseRecordTheSameDamageReadsAsATornTail) {
  // As if the process had died before its close: no close record.
  const testing::SegmentRecord* close = Last(format::kCloseType);
  ASSERT_NE(close, nullptr);
  ZeroBytes(SegmentPath(options_.db_path, 0, 1), close->offset_bytes, close->encoded_bytes);
  DamageLastPut();
  auto db = OpenOrFail(options_);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i + 1 < kRecords; ++i) EXPECT_EQ(*db->Get(Key(i)), Value(i));
  EXPECT_TRUE(db->Get(Key(kRecords - 1)).status().IsNotFound());
  const ShardStats stats = db->Stats().shards.at(0);
  EXPECT_NE(stats.recovery_note.find("tail"), std::string::npos) << stats.recovery_note;
}

}  // namespace
}  // namespace dmalog

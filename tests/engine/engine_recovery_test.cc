// Recovery from damaged segment files: a file cut inside a record (a torn
// tail), a flipped byte in the middle of the log under each recovery mode,
// and a database on a filesystem without O_DIRECT.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

constexpr int kRecords = 200;

std::string Key(int i) { return "key" + std::to_string(i); }
std::string Value(int i) {
  return std::string(50 + (i * 37) % 300, static_cast<char>('a' + i % 26));
}

// Writes records 0..kRecords-1 (each its own flush) into a one-shard database and closes it.
void WriteRecords(const Options& o) {
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({}, Key(i), Value(i)));
  ASSERT_OK(db->Close());
}

// Expects records [0, present_end) but [skipped_begin, skipped_end) with
// their values, and the others absent.
void ExpectRecords(Engine& db, int present_end, int skipped_begin = -1, int skipped_end = -1) {
  for (int i = 0; i < kRecords; ++i) {
    Result<std::string> v = db.Get(Key(i));
    const bool skipped = i >= skipped_begin && i < skipped_end;
    if (i < present_end && !skipped) {
      ASSERT_TRUE(v.ok()) << Key(i) << ": " << v.status().ToString();
      EXPECT_EQ(*v, Value(i)) << Key(i);
    } else {
      EXPECT_TRUE(v.status().IsNotFound()) << Key(i) << " should be gone";
    }
  }
}

// The data records of shard 0's first segment.
std::vector<testing::SegmentRecord> FirstSegmentRecords(const Options& o) {
  Result<std::vector<testing::SegmentRecord>> records =
      testing::ReadDataRecords(SegmentPath(o.db_path, 0, 1));
  EXPECT_TRUE(records.ok()) << records.status().ToString();
  return records.ok() ? *records : std::vector<testing::SegmentRecord>{};
}

void CopyDb(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

TEST(EngineRecoveryTest, FileCutInsideARecordIsATornTail) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  WriteRecords(o);
  std::vector<testing::SegmentRecord> records = FirstSegmentRecords(o);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  constexpr int kCut = 150;
  ASSERT_EQ(records[kCut].key, Key(kCut));
  const uint64_t cut_at = records[kCut].offset_bytes + records[kCut].encoded_bytes / 2;
  ASSERT_EQ(truncate(SegmentPath(o.db_path, 0, 1).c_str(), static_cast<off_t>(cut_at)), 0)
      << std::strerror(errno);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ExpectRecords(*db, kCut);
    const ShardStats stats = db->Stats().shards.at(0);
    EXPECT_GT(stats.recovery_dropped_bytes, 0u);
    EXPECT_NE(stats.recovery_note.find("tail"), std::string::npos) << stats.recovery_note;
    EXPECT_NE(stats.recovery_note.find(SegmentPath(o.db_path, 0, 1)), std::string::npos)
        << stats.recovery_note;
    // What was zeroed is kept beside the segment, for salvage.
    const std::string copy =
        SegmentPath(o.db_path, 0, 1) + ".dropped-" + std::to_string(records[kCut].offset_bytes);
    EXPECT_NE(stats.recovery_note.find("a copy of the dropped bytes is in " + copy),
              std::string::npos)
        << stats.recovery_note;
    std::error_code ec;
    EXPECT_EQ(std::filesystem::file_size(copy, ec), stats.recovery_dropped_bytes) << ec.message();
    // The drop is permanent: new writes after it are not "data after damage".
    ASSERT_OK(db->Put({}, "after", "repair"));
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectRecords(*db, kCut);
  EXPECT_EQ(*db->Get("after"), "repair");
  EXPECT_EQ(db->Stats().shards.at(0).recovery_dropped_bytes, 0u);
}

TEST(EngineRecoveryTest, AbsoluteConsistencyRefusesATornTail) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  WriteRecords(o);
  std::vector<testing::SegmentRecord> records = FirstSegmentRecords(o);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  const testing::SegmentRecord& last = records.back();
  ASSERT_EQ(truncate(SegmentPath(o.db_path, 0, 1).c_str(),
                     static_cast<off_t>(last.offset_bytes + last.encoded_bytes - 1)),
            0);
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
  EXPECT_NE(db.status().message().find("at the tail"), std::string::npos) << db.status().ToString();
  EXPECT_NE(db.status().message().find("offset " + std::to_string(last.offset_bytes)),
            std::string::npos)
      << db.status().ToString();
  // The default mode drops it.
  o.recovery_mode = RecoveryMode::kTolerateCorruptedTailRecords;
  auto reopened = OpenOrFail(o);
  ASSERT_NE(reopened, nullptr);
  ExpectRecords(*reopened, kRecords - 1);
}

class FlippedByteTest : public ::testing::Test {
 protected:
  static constexpr int kDamaged = 10;

  void SetUp() override {
    pristine_ = dir_.File("pristine");
    WriteRecords(SmallDbOptions(pristine_, 1));
    std::vector<testing::SegmentRecord> records = FirstSegmentRecords(SmallDbOptions(pristine_, 1));
    ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
    ASSERT_EQ(records[kDamaged].key, Key(kDamaged));
    damaged_offset_ = records[kDamaged].offset_bytes;
    // A byte inside the value: the header still parses, the checksum fails.
    ASSERT_OK(testing::FlipByte(SegmentPath(pristine_, 0, 1),
                                damaged_offset_ + records[kDamaged].encoded_bytes - 5));
  }

  // A copy of the damaged database, opened in `mode`.
  Options CopyIn(const std::string& name, RecoveryMode mode) {
    Options o = SmallDbOptions(dir_.File(name), 1);
    CopyDb(pristine_, o.db_path);
    o.recovery_mode = mode;
    return o;
  }

  testing::TestDir dir_;
  std::string pristine_;
  uint64_t damaged_offset_ = 0;
};

TEST_F(FlippedByteTest, DefaultModeNamesSegmentAndOffset) {
  Options o = CopyIn("db", RecoveryMode::kTolerateCorruptedTailRecords);
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
  const std::string msg(db.status().message());
  EXPECT_NE(msg.find(SegmentPath(o.db_path, 0, 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset " + std::to_string(damaged_offset_)), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
  // Nothing was changed: a second attempt reports the same damage.
  Result<std::unique_ptr<Engine>> again = Engine::Open(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().ToString(), db.status().ToString());
}

TEST_F(FlippedByteTest, AbsoluteConsistencyFails) {
  Options o = CopyIn("db", RecoveryMode::kAbsoluteConsistency);
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
  EXPECT_NE(db.status().message().find("in the middle"), std::string::npos)
      << db.status().ToString();
}

TEST_F(FlippedByteTest, PointInTimeKeepsWhatPrecedesTheDamagePermanently) {
  Options o = CopyIn("db", RecoveryMode::kPointInTime);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ExpectRecords(*db, kDamaged);
    const ShardStats stats = db->Stats().shards.at(0);
    EXPECT_GT(stats.recovery_dropped_bytes, 0u);
    // The empty spare segment it deleted held nothing: it is not counted.
    EXPECT_LT(stats.recovery_dropped_bytes, testing::kSmallSegmentBytes);
    EXPECT_NE(stats.recovery_note.find("point_in_time"), std::string::npos) << stats.recovery_note;
    ASSERT_OK(db->Put({}, "new", "after point in time"));
    ASSERT_OK(db->Close());
  }
  o.recovery_mode = RecoveryMode::kTolerateCorruptedTailRecords;
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectRecords(*db, kDamaged);
  EXPECT_EQ(*db->Get("new"), "after point in time");
}

TEST_F(FlippedByteTest, SkipAnyCorruptedRecordsKeepsAllButTheDamagedOne) {
  Options o = CopyIn("db", RecoveryMode::kSkipAnyCorruptedRecords);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  const ShardStats stats = db->Stats().shards.at(0);
  ExpectRecords(*db, kRecords, kDamaged, kDamaged + 1);
  EXPECT_GT(stats.recovery_dropped_bytes, 0u);
  EXPECT_NE(stats.recovery_note.find("skipped"), std::string::npos) << stats.recovery_note;
  ASSERT_OK(db->Put({}, Key(kDamaged), "rewritten"));
  EXPECT_EQ(*db->Get(Key(kDamaged)), "rewritten");
}

// A damaged record inside a flush of many: skip_any_corrupted_records
// resumes at the next record, where the damaged record's intact header
// says it starts, not at the next flush (which dropped the intact records
// after the damaged one, up to a whole flush).
TEST(EngineRecoveryTest, SkipAnyCorruptedRecordsResumesInsideTheFlush) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    // Unsynced: they queue while a flush is in flight and share the next.
    for (int i = 0; i < kRecords; ++i) ASSERT_OK(db->Put({.sync = false}, Key(i), Value(i)));
    ASSERT_OK(db->Close());
  }
  std::vector<testing::SegmentRecord> records = FirstSegmentRecords(o);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  int damaged = -1;
  for (int i = 1; i + 2 < kRecords && damaged < 0; ++i) {
    if ((records[i + 1].flags & format::kRecordFlagFlushStart) == 0) damaged = i;
  }
  ASSERT_GE(damaged, 0) << "no flush held two records";
  ASSERT_OK(testing::FlipByte(SegmentPath(o.db_path, 0, 1),
                              records[damaged].offset_bytes + records[damaged].encoded_bytes - 5));
  o.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectRecords(*db, kRecords, damaged, damaged + 1);
  const ShardStats stats = db->Stats().shards.at(0);
  EXPECT_EQ(stats.recovery_dropped_bytes,
            records[damaged + 1].offset_bytes - records[damaged].offset_bytes)
      << stats.recovery_note;
  // Tail, in the same mode, skips the damage (still on disk) as the open did.
  Result<std::vector<LogRecord>> tail = db->Tail(TailOptions{.max_records = 10 * kRecords});
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->size(), static_cast<size_t>(kRecords - 1));
}

// A stale copy of an earlier flush where a later one was (a misdirected
// write): its record verifies, but its sequence goes backwards. The open in
// skip_any_corrupted_records skips it, and so must Tail: it returned the
// stale record again, out of order.
TEST(EngineRecoveryTest, SkipAnyCorruptedRecordsTailSkipsAStaleBlockAsTheOpenDid) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  WriteRecords(o);
  std::vector<testing::SegmentRecord> records = FirstSegmentRecords(o);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  constexpr int kStale = 3;
  constexpr int kOverwritten = 10;
  // Each record is its own flush: one aligned write, padding included.
  const uint64_t flush_bytes = records[kStale + 1].offset_bytes - records[kStale].offset_bytes;
  ASSERT_EQ(records[kOverwritten + 1].offset_bytes - records[kOverwritten].offset_bytes,
            flush_bytes);
  {
    const int fd = open(SegmentPath(o.db_path, 0, 1).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::string block(flush_bytes, '\0');
    ASSERT_EQ(
        pread(fd, block.data(), flush_bytes, static_cast<off_t>(records[kStale].offset_bytes)),
        static_cast<ssize_t>(flush_bytes));
    ASSERT_EQ(pwrite(fd, block.data(), flush_bytes,
                     static_cast<off_t>(records[kOverwritten].offset_bytes)),
              static_cast<ssize_t>(flush_bytes));
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  o.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  ExpectRecords(*db, kRecords, kOverwritten, kOverwritten + 1);
  EXPECT_NE(db->Stats().shards.at(0).recovery_note.find("backwards"), std::string::npos);
  Result<std::vector<LogRecord>> tail = db->Tail(TailOptions{.max_records = 10 * kRecords});
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  ASSERT_EQ(tail->size(), static_cast<size_t>(kRecords - 1));
  for (size_t i = 1; i < tail->size(); ++i) {
    ASSERT_GT((*tail)[i].sequence, (*tail)[i - 1].sequence) << "at " << i;
  }
}

// Two whole flushes in the middle of the log read as zeros (writes lost after
// they were acknowledged), and valid records follow: that is damage in the
// middle, not the end of the log.
TEST(EngineRecoveryTest, ZeroedFlushesInTheMiddleAreCorruption) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 1);
  WriteRecords(o);
  std::vector<testing::SegmentRecord> records = FirstSegmentRecords(o);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  constexpr int kLost = 10;
  constexpr int kLostCount = 2;
  const testing::SegmentRecord& lost = records[kLost];
  // Each record was its own flush, so [its offset, the next record's) is one
  // aligned write, padding included. More than one block of zeros: the
  // search for a valid record skips whole zero blocks.
  const uint64_t lost_bytes = records[kLost + kLostCount].offset_bytes - lost.offset_bytes;
  ASSERT_OK(testing::ZeroRange(SegmentPath(o.db_path, 0, 1), lost.offset_bytes,
                               static_cast<uint32_t>(lost_bytes)));
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  ASSERT_FALSE(db.ok()) << "the records after the hole were silently dropped";
  EXPECT_TRUE(db.status().IsCorruption()) << db.status().ToString();
  const std::string msg(db.status().message());
  EXPECT_NE(msg.find("offset " + std::to_string(lost.offset_bytes)), std::string::npos) << msg;
  EXPECT_NE(msg.find("unwritten space"), std::string::npos) << msg;
  // skip_any_corrupted_records keeps both sides of the hole.
  o.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  auto salvaged = OpenOrFail(o);
  ASSERT_NE(salvaged, nullptr);
  ExpectRecords(*salvaged, kRecords, kLost, kLost + kLostCount);
}

// Put, get and reopen; checks the I/O mode the engine reports.
void ExpectWorks(const Options& o, bool direct_io) {
  {
    auto db = OpenOrFail(o);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Put({}, "k", "v"));
    EXPECT_EQ(*db->Get("k"), "v");
    EXPECT_EQ(db->Stats().direct_io, direct_io);
    ASSERT_OK(db->Close());
  }
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*db->Get("k"), "v");
  EXPECT_EQ(db->Stats().direct_io, direct_io);
}

TEST(EngineNoDirectIoTest, RamfsFallsBackToBufferedIo) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting ramfs needs root";
  testing::TestDir dir;
  const std::string mnt = dir.File("ramfs");
  std::filesystem::create_directories(mnt);
  if (mount("ramfs", mnt.c_str(), "ramfs", 0, nullptr) != 0) {
    GTEST_SKIP() << "mount -t ramfs " << mnt << " failed: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  Options o = SmallDbOptions(mnt + "/db", 1);
  ExpectWorks(o, /*direct_io=*/false);
  o.require_direct_io = true;
  Result<std::unique_ptr<Engine>> strict = Engine::Open(o);
  ASSERT_FALSE(strict.ok());
  EXPECT_TRUE(strict.status().IsUnsupported()) << strict.status().ToString();
  EXPECT_NE(strict.status().message().find("O_DIRECT"), std::string::npos)
      << strict.status().ToString();
}

TEST(EngineNoDirectIoTest, ForcedIoFallbackWorksAndSaysWhy) {
  testing::TestDir dir;
  Options o = SmallDbOptions(dir.File("db"), 2);
  o.force_io_fallback = true;
  ExpectWorks(o, /*direct_io=*/true);
  auto db = OpenOrFail(o);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(db->Stats().io_fallback.empty());
}

}  // namespace
}  // namespace dmalog

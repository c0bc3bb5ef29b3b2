// ENOSPC on a real, small, loop-mounted filesystem (ext4 and xfs), through
// the embedding API: a filler file leaves little room, writes go on until
// the disk is full; then
//   * the failing write says "Disk full", names ENOSPC and what to do;
//   * the shard does not turn read-only (a failed segment creation is not a
//     failed write of data): the next write fails the same way, not ReadOnly;
//   * every acknowledged write reads back, before and after a reopen, and the
//     reopen succeeds on the full disk;
//   * once the filler is deleted, writes resume in the same engine, without
//     reopening, across several segment roll-overs, and after a reopen.
// Both the engine that hit the full disk and one reopened on a full disk are
// checked for the resume.
//
// Needs root, /dev/loop-control, e2fsprogs and xfsprogs; otherwise it skips
// and says why, except when the CI environment variable is set: then it
// fails.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "dmalog/engine.h"
#include "tests/powercut/powercut_util.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

constexpr uint64_t kSegmentBytes = 4ull << 20;
constexpr uint64_t kValueBytes = 16ull << 10;
// Room left beside the filler for the first fill: segment 1 and the
// preallocated segment 2 fit, segment 3 does not.
constexpr uint64_t kFirstRoomBytes = 10ull << 20;
static_assert(kFirstRoomBytes > 2 * kSegmentBytes && kFirstRoomBytes < 3 * kSegmentBytes);
// Room for the second fill: less than one segment.
constexpr uint64_t kSecondRoomBytes = 2ull << 20;
static_assert(kSecondRoomBytes < kSegmentBytes);
constexpr uint64_t kFillerChunkBytes = 1ull << 20;
constexpr uint64_t kFillerChunksMax = 1ull << 12;  // 4 GiB, far above these images.
// Puts before the disk is full: bounded by the room (far less than this).
constexpr uint64_t kPutsUntilFullMax = 4 * kFirstRoomBytes / kValueBytes;
// The first fill must get at least most of one segment's worth of puts in.
constexpr uint64_t kPutsUntilFullMin = kSegmentBytes / kValueBytes / 2;
// Puts after space is freed: more than two segments, so at least two
// roll-overs need new segments.
constexpr uint64_t kResumePuts = 2 * kSegmentBytes / kValueBytes + 100;

struct FsParam {
  const char* type;
  uint64_t image_bytes;
  std::vector<std::string> mkfs_args;
};

// Each image holds the whole test's log (about 45 MiB: the engine does not
// reclaim segments) beside the filler. ext4 without the root reserve (root
// could write into it, blurring "full"); mkfs.xfs (xfsprogs 6.1) refuses
// images of less than 300 MB.
const FsParam kFilesystems[] = {
    {"ext4", 128ull << 20, {"-q", "-F", "-b", "4096", "-m", "0"}},
    {"xfs", 320ull << 20, {"-q", "-f"}},
};

// gtest prints a parameter with this (its bytes otherwise).
void PrintTo(const FsParam& p, std::ostream* os) { *os << p.type; }

std::string KeyOf(uint64_t i) { return "key-" + std::to_string(1000000 + i); }

std::string ValueOf(uint64_t i) {
  std::string v = "value " + std::to_string(i) + ":";
  v.resize(kValueBytes, static_cast<char>('a' + i % 26));
  return v;
}

uint64_t FreeBytes(const std::string& mount_point) {
  struct statvfs st = {};
  if (statvfs(mount_point.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Writes `path` with ordinary buffered writes until only `room_bytes` are
// free on its filesystem (or a write fails: something else took the room),
// then fdatasyncs it. Returns the bytes written.
uint64_t FillLeaving(const std::string& path, const std::string& mount_point, uint64_t room_bytes) {
  const uint64_t free_bytes = FreeBytes(mount_point);
  const uint64_t target = free_bytes > room_bytes ? free_bytes - room_bytes : 0;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  const std::string chunk(kFillerChunkBytes, 'f');
  uint64_t written = 0;
  for (uint64_t i = 0; i < kFillerChunksMax && written < target; ++i) {
    const uint64_t n = std::min<uint64_t>(kFillerChunkBytes, target - written);
    const ssize_t w = write(fd, chunk.data(), n);
    if (w <= 0) break;
    written += static_cast<uint64_t>(w);
  }
  const bool synced = fdatasync(fd) == 0;
  close(fd);
  return synced ? written : 0;
}

class RealEnospc : public ::testing::TestWithParam<FsParam> {
 protected:
  // A fresh image of the parameter's filesystem, mounted, and the options
  // of a one-shard database on it. Skips (fails under CI) when this
  // machine cannot loop-mount it.
  void SetUp() override {
    const FsParam& p = GetParam();
    const std::string why =
        LoopMountUnavailable({"losetup", "mount", "umount", "mkfs." + std::string(p.type)});
    if (!why.empty() && InCi()) FAIL() << why << "; CI is set, so this is a failure, not a skip";
    if (!why.empty()) GTEST_SKIP() << why;
    fs_ = std::make_unique<LoopFilesystem>(dir_.File(std::string(p.type) + ".img"),
                                           dir_.File("mnt"), p.type);
    ASSERT_OK(fs_->Create(p.image_bytes, p.mkfs_args));
    const Status mounted = fs_->Mount();
    if (!mounted.ok() && !KernelHasFilesystem(p.type)) {
      const std::string no_fs =
          std::string("the kernel has no ") + p.type + " (" + mounted.ToString() + ")";
      if (InCi()) FAIL() << no_fs << "; CI is set, so this is a failure, not a skip";
      GTEST_SKIP() << no_fs;
    }
    ASSERT_OK(mounted);
    filler_ = fs_->mount_point() + "/filler";
    options_.db_path = fs_->mount_point() + "/db";
    options_.shard_count = 1;
    options_.segment_size_bytes = kSegmentBytes;
    options_.quiet = true;
  }

  // Puts fresh keys until one fails; returns that failure.
  Status PutUntilFull(Engine* db) {
    for (uint64_t n = 0; n < kPutsUntilFullMax; ++n) {
      const uint64_t i = next_++;
      Status s = db->Put({}, KeyOf(i), ValueOf(i));
      if (!s.ok()) return s;
      acknowledged_.push_back(i);
    }
    return Status::OK();
  }

  // Puts kResumePuts fresh keys, each of which must succeed.
  void Resume(Engine* db, const std::string& when) {
    for (uint64_t n = 0; n < kResumePuts; ++n) {
      const uint64_t i = next_++;
      const Status s = db->Put({}, KeyOf(i), ValueOf(i));
      ASSERT_TRUE(s.ok()) << when << ": put " << n << " of " << kResumePuts
                          << " after space was freed: " << s.ToString();
      acknowledged_.push_back(i);
    }
  }

  // Every acknowledged write reads back.
  void ExpectAcknowledged(Engine* db, const std::string& when) {
    uint64_t missing = 0;
    for (uint64_t i : acknowledged_) {
      Result<std::string> v = db->Get(KeyOf(i));
      if (v.ok() && *v == ValueOf(i)) continue;
      if (++missing <= 3) {
        ADD_FAILURE() << when << ": acknowledged key " << KeyOf(i) << " reads back "
                      << (v.ok() ? "a wrong value" : v.status().ToString());
      }
    }
    EXPECT_EQ(missing, 0u) << when << ": of " << acknowledged_.size() << " acknowledged writes";
  }

  void ExpectDiskFull(const Status& s, const std::string& when) {
    EXPECT_TRUE(s.IsNoSpace()) << when << ": " << s.ToString();
    EXPECT_NE(s.ToString().find("Disk full"), std::string::npos) << s.ToString();
    EXPECT_NE(s.ToString().find("ENOSPC"), std::string::npos) << s.ToString();
    EXPECT_NE(s.ToString().find("free space"), std::string::npos) << s.ToString();
  }

  void ExpectWritable(Engine* db, const std::string& when) {
    for (const ShardStats& shard : db->Stats().shards) {
      EXPECT_EQ(shard.read_only_cause, "") << when << ": shard " << shard.shard;
    }
  }

  TestDir dir_;
  std::unique_ptr<LoopFilesystem> fs_;  // Unmounted before dir_ is removed.
  std::string filler_;
  Options options_;
  std::vector<uint64_t> acknowledged_;
  uint64_t next_ = 0;
};

std::unique_ptr<Engine> OpenOrFail(const Options& o, const std::string& when) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  EXPECT_TRUE(db.ok()) << when << ": " << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

TEST_P(RealEnospc, FullDiskFailsKeepsDataReopensAndResumes) {
  const FsParam& p = GetParam();
  const LoopFilesystem& fs = *fs_;
  const std::string& filler = filler_;
  const Options& o = options_;

  // 1. Fill, fail, stay writable, free space, resume in the same engine.
  ASSERT_GT(FillLeaving(filler, fs.mount_point(), kFirstRoomBytes), 0u) << "writing " << filler;
  std::unique_ptr<Engine> db = OpenOrFail(o, "open beside the filler");
  ASSERT_NE(db, nullptr);
  const Status full = PutUntilFull(db.get());
  std::printf("%s, first fill: %zu puts acknowledged, then: %s\n", p.type, acknowledged_.size(),
              full.ToString().c_str());
  ExpectDiskFull(full, "the put that found the disk full");
  EXPECT_GE(acknowledged_.size(), kPutsUntilFullMin);
  ExpectDiskFull(db->Put({}, KeyOf(next_++), ValueOf(0)), "the next put on the full disk");
  ExpectWritable(db.get(), "after the disk filled");
  ExpectAcknowledged(db.get(), "on the full disk");
  ASSERT_TRUE(std::filesystem::remove(filler));
  Resume(db.get(), "same engine, no reopen");
  ExpectAcknowledged(db.get(), "after the resume");

  // 2. Fill again, close and reopen on the full disk, free space, resume.
  ASSERT_GT(FillLeaving(filler, fs.mount_point(), kSecondRoomBytes), 0u) << "writing " << filler;
  const Status full_again = PutUntilFull(db.get());
  std::printf("%s, second fill: %zu puts acknowledged in all, then: %s\n", p.type,
              acknowledged_.size(), full_again.ToString().c_str());
  ExpectDiskFull(full_again, "the put that found the disk full again");
  ASSERT_OK(db->Close());
  db = OpenOrFail(o, "reopen on the full disk");
  ASSERT_NE(db, nullptr);
  ExpectAcknowledged(db.get(), "reopened on the full disk");
  ExpectDiskFull(db->Put({}, KeyOf(next_++), ValueOf(0)), "a put after reopening on the full disk");
  ExpectWritable(db.get(), "reopened on the full disk");
  ASSERT_TRUE(std::filesystem::remove(filler));
  Resume(db.get(), "reopened engine, after freeing space");
  ASSERT_OK(db->Close());

  // 3. Reopen with room: everything is there and writes work.
  db = OpenOrFail(o, "reopen with room");
  ASSERT_NE(db, nullptr);
  ExpectAcknowledged(db.get(), "reopened with room");
  Resume(db.get(), "reopened with room");
  ASSERT_OK(db->Close());
  std::printf("%s: %zu acknowledged writes read back after two full disks and three opens\n",
              p.type, acknowledged_.size());
}

// sync = false puts until the disk is full: the put the shard could not
// take had already returned OK, so it is lost. The shard must then refuse
// every later write (so that none lands after the hole, even once space is
// freed), and every Sync() and Close() must report the loss, whichever
// thread calls them. Before this held, another thread's write took the
// error, and a Sync() after it returned OK.
TEST_P(RealEnospc, LostUnsyncedPutStopsTheShardsWritesAndEverySyncReportsIt) {
  const FsParam& p = GetParam();
  const LoopFilesystem& fs = *fs_;
  const std::string& filler = filler_;
  const Options& o = options_;
  ASSERT_GT(FillLeaving(filler, fs.mount_point(), kFirstRoomBytes), 0u) << "writing " << filler;
  std::unique_ptr<Engine> db = OpenOrFail(o, "open beside the filler");
  ASSERT_NE(db, nullptr);
  // More than the room holds. The calls return long before the shard takes
  // their writes, so they may all return OK.
  for (uint64_t n = 0; n < kPutsUntilFullMax; ++n) {
    const uint64_t i = next_++;
    const Status s = db->Put({.sync = false}, KeyOf(i), ValueOf(i));
    if (!s.ok()) break;
    acknowledged_.push_back(i);
  }
  std::string cause;
  for (int waits = 0; waits < 1000 && cause.empty(); ++waits) {
    cause = db->Stats().shards.at(0).read_only_cause;
    if (cause.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const Status refused = db->Put({.sync = false}, KeyOf(next_++), ValueOf(0));
  EXPECT_TRUE(refused.IsReadOnly()) << refused.ToString();
  EXPECT_NE(cause.find("sync=false was lost"), std::string::npos) << cause;
  EXPECT_NE(cause.find("Disk full"), std::string::npos) << cause;
  // Refused even with room again: a write now would follow the hole.
  ASSERT_TRUE(std::filesystem::remove(filler));
  EXPECT_TRUE(db->Put({}, "after-the-loss", "v").IsReadOnly());
  for (int round = 0; round < 2; ++round) {
    Status synced;
    std::thread([&] { synced = db->Sync(); }).join();
    EXPECT_TRUE(synced.IsNoSpace()) << "Sync " << round << ": " << synced.ToString();
  }
  EXPECT_TRUE(db->Close().IsNoSpace());
  // What was lost is a suffix of the acknowledged puts (never a hole).
  db = OpenOrFail(o, "reopen");
  ASSERT_NE(db, nullptr);
  size_t present = 0;
  while (present < acknowledged_.size() && db->Get(KeyOf(acknowledged_[present])).ok()) ++present;
  EXPECT_GE(present, static_cast<size_t>(kPutsUntilFullMin));
  for (size_t k = present; k < acknowledged_.size(); ++k) {
    EXPECT_TRUE(db->Get(KeyOf(acknowledged_[k])).status().IsNotFound()) << "a hole at " << k;
  }
  EXPECT_TRUE(db->Get("after-the-loss").status().IsNotFound());
  std::printf("%s: %zu sync=false puts acknowledged, %zu lost to the full disk\n", p.type,
              acknowledged_.size(), acknowledged_.size() - present);
  ASSERT_OK(db->Put({}, "after-reopen", "v"));
  ASSERT_OK(db->Close());
}

INSTANTIATE_TEST_SUITE_P(Filesystems, RealEnospc, ::testing::ValuesIn(kFilesystems),
                         [](const ::testing::TestParamInfo<FsParam>& info) {
                           return std::string(info.param.type);
                         });

}  // namespace
}  // namespace dmalog::testing

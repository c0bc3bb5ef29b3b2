// DmaFile: alignment detection, the buffered fallback (ramfs), errors.
#include "io/dma_file.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "io/backend.h"
#include "io/run_blocking.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace dmalog::io {
namespace {

bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

DmaFileOptions Create() {
  DmaFileOptions options;
  options.create = true;
  return options;
}

TEST(DmaFileTest, AlignmentIsAskedOfTheFileAndSane) {
  dmalog::testing::TestDir dir;
  Result<DmaFile> file = DmaFile::Open(dir.File("a.seg"), Create());
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->direct_io()) << "the build tree is on ext4";
  EXPECT_GE(file->offset_alignment_bytes(), 512u);
  EXPECT_TRUE(IsPowerOfTwo(file->offset_alignment_bytes()));
  EXPECT_TRUE(IsPowerOfTwo(file->memory_alignment_bytes()));
  EXPECT_LE(file->memory_alignment_bytes(), 4096u);
  EXPECT_GE(file->max_transfer_bytes(), file->offset_alignment_bytes());
  EXPECT_LE(file->max_transfer_bytes(), kMaxTransferBytesMax);
  EXPECT_EQ(file->max_transfer_bytes() % file->offset_alignment_bytes(), 0u);
  std::printf("offset_alignment=%u memory_alignment=%u max_transfer=%u\n",
              file->offset_alignment_bytes(), file->memory_alignment_bytes(),
              file->max_transfer_bytes());
}

TEST(DmaFileTest, SizeCloseAndMoveKeepThePathStable) {
  dmalog::testing::TestDir dir;
  DmaFileOptions options = Create();
  Result<DmaFile> opened = DmaFile::Open(dir.File("m.seg"), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  DmaFile file = std::move(opened).value();
  const char* path_before = file.path().c_str();
  DmaFile moved = std::move(file);
  EXPECT_EQ(moved.path().c_str(), path_before) << "in-flight requests point at it";
  EXPECT_EQ(moved.SizeBytes().value(), 0u);
  ASSERT_EQ(0, truncate(moved.path().c_str(), 12345));
  EXPECT_EQ(moved.SizeBytes().value(), 12345u);
  ASSERT_OK(moved.Close());
  EXPECT_EQ(moved.fd(), -1);
  ASSERT_OK(moved.Close());  // Closing twice is a no-op.
  options.truncate = true;
  Result<DmaFile> again = DmaFile::Open(dir.File("m.seg"), options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SizeBytes().value(), 0u) << "truncate";
}

TEST(DmaFileTest, MissingFileIsNotFoundAndNamed) {
  dmalog::testing::TestDir dir;
  const std::string path = dir.File("missing.seg");
  Result<DmaFile> file = DmaFile::Open(path, DmaFileOptions{});
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(file.status().IsNotFound()) << file.status().ToString();
  EXPECT_EQ(file.status().message().find("open " + path + ": ENOENT"), 0u)
      << file.status().ToString();
}

TEST(DmaFileTest, ConflictingOptionsAreRejected) {
  dmalog::testing::TestDir dir;
  DmaFileOptions options = Create();
  options.require_direct_io = true;
  options.force_buffered = true;
  EXPECT_TRUE(DmaFile::Open(dir.File("x"), options).status().IsInvalidArgument());
}

TEST(DmaFileTest, ForceBufferedSkipsODirect) {
  dmalog::testing::TestDir dir;
  DmaFileOptions options = Create();
  options.force_buffered = true;
  Result<DmaFile> file = DmaFile::Open(dir.File("b.seg"), options);
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE(file->direct_io());
}

TEST(DmaFileTest, SyncDirectory) {
  dmalog::testing::TestDir dir;
  ASSERT_OK(SyncDirectory(dir.path().string()));
  const std::string missing = dir.File("nope");
  const Status status = SyncDirectory(missing);
  EXPECT_TRUE(status.IsNotFound()) << status.ToString();
  EXPECT_NE(status.message().find(missing), std::string::npos);
  EXPECT_NE(status.message().find("ENOENT"), std::string::npos);
}

TEST(DmaFileTest, RamfsFallsBackToBufferedOrFailsWhenDirectIoIsRequired) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting ramfs needs root";
  dmalog::testing::TestDir dir;
  const std::string mnt = dir.File("ramfs");
  testing::ScopedMount mount("ramfs", "ramfs", "", mnt);
  if (!mount.error().empty()) GTEST_SKIP() << mount.error();
  const std::string path = mnt + "/r.seg";

  DmaFileOptions strict = Create();
  strict.require_direct_io = true;
  Result<DmaFile> refused = DmaFile::Open(path, strict);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsUnsupported()) << refused.status().ToString();
  EXPECT_EQ(refused.status().sys_errno(), EINVAL);
  const std::string msg(refused.status().message());
  EXPECT_NE(msg.find(mnt + " does not support O_DIRECT (open: EINVAL"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(path)) << "no stray file";

  ::testing::internal::CaptureStderr();
  Result<DmaFile> file = DmaFile::Open(path, Create());
  Result<DmaFile> second = DmaFile::Open(mnt + "/r2.seg", Create());
  const std::string warning = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(file->direct_io());
  EXPECT_EQ(warning, "dmalog: warning: " + mnt +
                         " does not support O_DIRECT (open: EINVAL; e.g. ramfs, some FUSE or "
                         "network filesystems): using buffered I/O + fdatasync; put the "
                         "database on ext4 or xfs for direct I/O\n")
      << "exactly one line per process";

  // Buffered I/O still works through a backend.
  std::unique_ptr<Backend> backend = testing::OpenTestBackend(/*sync=*/true);
  ASSERT_NE(backend, nullptr);
  auto out = testing::AllocAligned(4096, 4096);
  testing::FillPattern(out.get(), 4096, 9);
  IoRequest write = file->MakeRequest(IoOp::kWriteFdatasync, out.get(), 4096, 0);
  ASSERT_OK(RunBlocking(*backend, &write));
  auto in = testing::AllocAligned(4096, 4096);
  IoRequest read = file->MakeRequest(IoOp::kRead, in.get(), 4096, 0);
  ASSERT_OK(RunBlocking(*backend, &read));
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), 4096));
  ASSERT_OK(file->Close());
  ASSERT_OK(second->Close());
}

}  // namespace
}  // namespace dmalog::io

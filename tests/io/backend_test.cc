// Both backends (io_uring and the thread-pool fallback) against real files in
// the build tree: round trips, splits, fixed buffers, write+fdatasync, short
// transfers, errno mapping, Wake().
#include "io/backend.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "io/buffer_pool.h"
#include "io/dma_file.h"
#include "io/run_blocking.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace dmalog::io {
namespace {

using testing::AllocAligned;
using testing::FillPattern;

class BackendTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    backend_ = testing::OpenTestBackend(GetParam());
    ASSERT_NE(backend_, nullptr);
    ASSERT_EQ(backend_->kind(), GetParam() ? BackendKind::kSync : BackendKind::kUring);
  }
  DmaFile OpenDirect(const std::string& name) {
    DmaFileOptions options;
    options.create = true;
    options.require_direct_io = true;
    Result<DmaFile> file = DmaFile::Open(dir_.File(name), options);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return std::move(file).value();
  }
  // A buffered fd for the tests that need byte-granular transfers.
  int OpenBuffered(const std::string& path, int flags) {
    const int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
    return fd;
  }

  std::unique_ptr<Backend> backend_;
  dmalog::testing::TestDir dir_;
};

TEST_P(BackendTest, DirectRoundTripSplitByMaxTransfer) {
  DmaFile file = OpenDirect("split.seg");
  ASSERT_TRUE(file.direct_io());
  constexpr uint64_t kLengthBytes = 6u << 20;  // 6 MiB.
  const uint32_t align = file.memory_alignment_bytes();
  auto out = AllocAligned(kLengthBytes, align);
  auto in = AllocAligned(kLengthBytes, align);
  FillPattern(out.get(), kLengthBytes, 1);
  // 192 KiB chunks: 32 kernel requests per transfer.
  IoRequest write = file.MakeRequest(IoOp::kWrite, out.get(), kLengthBytes, 0);
  write.max_transfer_bytes = 192 << 10;
  ASSERT_OK(RunBlocking(*backend_, &write));
  EXPECT_EQ(write.done_bytes, kLengthBytes);
  EXPECT_EQ(write.resubmits, 0u) << "a split is not a resubmission";
  IoRequest read = file.MakeRequest(IoOp::kRead, in.get(), kLengthBytes, 0);
  read.max_transfer_bytes = 192 << 10;
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(read.done_bytes, kLengthBytes);
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), kLengthBytes));
  EXPECT_EQ(file.SizeBytes().value(), kLengthBytes);
}

TEST_P(BackendTest, FixedBuffersRegisteredWithThePool) {
  DmaFile file = OpenDirect("fixed.seg");
  Result<std::unique_ptr<BufferPool>> pool = BufferPool::Create(4, 64 << 10);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  ASSERT_OK((*pool)->RegisterWith(*backend_));
  ASSERT_TRUE((*pool)->registered());
  Buffer out = (*pool)->TryAcquire().value();
  Buffer in = (*pool)->TryAcquire().value();
  ASSERT_EQ(out.index, 0);
  ASSERT_EQ(in.index, 1);
  FillPattern(out.data, out.size_bytes, 2);
  IoRequest write = file.MakeRequest(IoOp::kWrite, out.data, out.size_bytes, 4096, out.index);
  write.max_transfer_bytes = 16 << 10;  // Splits within a fixed buffer.
  ASSERT_OK(RunBlocking(*backend_, &write));
  IoRequest read = file.MakeRequest(IoOp::kRead, in.data, in.size_bytes, 4096, in.index);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(read.done_bytes, in.size_bytes);
  EXPECT_EQ(0, std::memcmp(in.data, out.data, out.size_bytes));
  (*pool)->Release(out);
  (*pool)->Release(in);
}

TEST_P(BackendTest, WriteFdatasyncAndFallocate) {
  DmaFile file = OpenDirect("durable.seg");
  IoRequest alloc = file.MakeRequest(IoOp::kFallocate, nullptr, 1 << 20, 0);
  ASSERT_OK(RunBlocking(*backend_, &alloc));
  EXPECT_EQ(file.SizeBytes().value(), 1u << 20) << "mode 0 extends the file";
  auto out = AllocAligned(128 << 10, file.memory_alignment_bytes());
  FillPattern(out.get(), 128 << 10, 3);
  IoRequest write = file.MakeRequest(IoOp::kWriteFdatasync, out.get(), 128 << 10, 64 << 10);
  write.max_transfer_bytes = 32 << 10;  // Only the last chunk carries the fdatasync.
  ASSERT_OK(RunBlocking(*backend_, &write));
  EXPECT_TRUE(write.sync_done);
  EXPECT_EQ(write.done_bytes, 128u << 10);
  IoRequest sync = file.MakeRequest(IoOp::kFdatasync, nullptr, 0, 0);
  ASSERT_OK(RunBlocking(*backend_, &sync));
  auto in = AllocAligned(128 << 10, file.memory_alignment_bytes());
  IoRequest read = file.MakeRequest(IoOp::kRead, in.get(), 128 << 10, 64 << 10);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), 128 << 10));
}

TEST_P(BackendTest, WriteWithRwfDsyncRoundTrips) {
  DmaFile file = OpenDirect("dsync.seg");
  auto out = AllocAligned(64 << 10, file.memory_alignment_bytes());
  FillPattern(out.get(), 64 << 10, 9);
  IoRequest write = file.MakeRequest(IoOp::kWrite, out.get(), 64 << 10, 4096);
  write.rw_flags = RWF_DSYNC;
  ASSERT_OK(RunBlocking(*backend_, &write));
  EXPECT_EQ(write.done_bytes, 64u << 10);
  auto in = AllocAligned(64 << 10, file.memory_alignment_bytes());
  IoRequest read = file.MakeRequest(IoOp::kRead, in.get(), 64 << 10, 4096);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), 64 << 10));
  // An invalid flag is refused by the kernel and named, not ignored.
  IoRequest bad = file.MakeRequest(IoOp::kWrite, out.get(), 4096, 0);
  bad.rw_flags = 0x40000000;
  Status s = RunBlocking(*backend_, &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("EOPNOTSUPP"), std::string_view::npos) << s.ToString();
}

TEST_P(BackendTest, ReadPastEndOfFileIsShortAndOk) {
  DmaFile file = OpenDirect("eof.seg");
  auto buf = AllocAligned(64 << 10, file.memory_alignment_bytes());
  FillPattern(buf.get(), 8192, 4);
  IoRequest write = file.MakeRequest(IoOp::kWrite, buf.get(), 8192, 0);
  ASSERT_OK(RunBlocking(*backend_, &write));
  IoRequest read = file.MakeRequest(IoOp::kRead, buf.get(), 64 << 10, 0);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(read.done_bytes, 8192u);
}

TEST_P(BackendTest, ManyRequestsInFlightAllComplete) {
  DmaFile file = OpenDirect("many.seg");
  constexpr uint32_t kRequests = 64;
  constexpr uint64_t kBlockBytes = 4096;
  auto buf = AllocAligned(kRequests * kBlockBytes, file.memory_alignment_bytes());
  FillPattern(buf.get(), kRequests * kBlockBytes, 5);
  std::vector<IoRequest> reqs;
  reqs.reserve(kRequests);  // Requests must not move once submitted.
  for (uint32_t i = 0; i < kRequests; ++i) {
    const IoOp op = i % 2 ? IoOp::kWriteFdatasync : IoOp::kWrite;
    reqs.push_back(file.MakeRequest(op, buf.get() + i * kBlockBytes, kBlockBytes, i * kBlockBytes));
  }
  const uint32_t capacity_before = backend_->capacity();
  ASSERT_GE(capacity_before, kRequests);
  for (IoRequest& req : reqs) backend_->Submit(&req);
  EXPECT_EQ(backend_->in_flight(), kRequests);
  EXPECT_EQ(backend_->capacity(), capacity_before - kRequests);
  uint32_t completed = 0;
  for (int poll = 0; poll < 10000 && completed < kRequests; ++poll) {
    ASSERT_OK(backend_->Poll(-1));
    for (IoRequest* req = backend_->PopCompleted(); req; req = backend_->PopCompleted()) {
      EXPECT_OK(req->status);
      EXPECT_EQ(req->done_bytes, kBlockBytes);
      completed++;
    }
  }
  EXPECT_EQ(completed, kRequests);
  EXPECT_EQ(backend_->in_flight(), 0u);
  auto in = AllocAligned(kRequests * kBlockBytes, file.memory_alignment_bytes());
  IoRequest read = file.MakeRequest(IoOp::kRead, in.get(), kRequests * kBlockBytes, 0);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(0, std::memcmp(in.get(), buf.get(), kRequests * kBlockBytes));
}

// RLIMIT_FSIZE makes the kernel write up to the limit (a real short write),
// then fail the resubmitted remainder with EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t limit_bytes) {
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limit = old_;
    limit.rlim_cur = limit_bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

TEST_P(BackendTest, ShortWriteIsResubmittedThenEfbigIsNamed) {
  for (IoOp op : {IoOp::kWrite, IoOp::kWriteFdatasync}) {
    const std::string path = dir_.File(std::string("short.") + IoOpName(op));
    const int fd = OpenBuffered(path, O_RDWR | O_CREAT);
    std::vector<uint8_t> buf(10000);
    FillPattern(buf.data(), buf.size(), 6);
    IoRequest write = testing::MakeRequest(op, fd, buf.data(), buf.size(), 0, path);
    Status status;
    {
      FileSizeLimit limit(6000);
      status = RunBlocking(*backend_, &write);
    }
    EXPECT_EQ(write.done_bytes, 6000u) << "the short write advanced";
    EXPECT_GE(write.resubmits, 1u) << "the remainder was resubmitted";
    EXPECT_FALSE(write.sync_done);
    ASSERT_TRUE(status.IsIOError()) << status.ToString();
    EXPECT_EQ(status.sys_errno(), EFBIG);
    const std::string msg(status.message());
    EXPECT_NE(msg.find("write " + path + " at offset 6000"), std::string::npos) << msg;
    EXPECT_NE(msg.find("EFBIG"), std::string::npos) << msg;
    close(fd);
  }
}

TEST_P(BackendTest, WriteToReadOnlyFdNamesEbadf) {
  const std::string path = dir_.File("readonly");
  close(OpenBuffered(path, O_RDWR | O_CREAT));
  const int fd = OpenBuffered(path, O_RDONLY);
  std::vector<uint8_t> buf(4096);
  IoRequest write = testing::MakeRequest(IoOp::kWrite, fd, buf.data(), buf.size(), 8192, path);
  const Status status = RunBlocking(*backend_, &write);
  ASSERT_TRUE(status.IsIOError()) << status.ToString();
  EXPECT_EQ(status.sys_errno(), EBADF);
  EXPECT_EQ(status.message().find("write " + path + " at offset 8192: EBADF"), 0u)
      << status.ToString();
  close(fd);
}

TEST_P(BackendTest, FullDiskMapsToNoSpace) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a loop ext4 image needs root";
  const std::string image = dir_.File("small.img");
  const std::string mnt = dir_.File("mnt");
  const std::string mkfs = "truncate -s 8M " + image + " && mkfs.ext4 -q -F " + image;
  if (std::system(mkfs.c_str()) != 0) GTEST_SKIP() << "mkfs.ext4 unavailable: " << mkfs;
  testing::ScopedMount mount(image, "ext4", "loop", mnt);
  if (!mount.error().empty()) GTEST_SKIP() << mount.error();
  DmaFileOptions options;
  options.create = true;
  Result<DmaFile> file = DmaFile::Open(mnt + "/fill.seg", options);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  constexpr uint64_t kLengthBytes = 16u << 20;  // Twice the filesystem.
  auto buf = AllocAligned(kLengthBytes, file->memory_alignment_bytes());
  IoRequest write = file->MakeRequest(IoOp::kWrite, buf.get(), kLengthBytes, 0);
  const Status status = RunBlocking(*backend_, &write);
  ASSERT_TRUE(status.IsNoSpace()) << status.ToString();
  EXPECT_EQ(status.sys_errno(), ENOSPC);
  const std::string msg(status.message());
  EXPECT_NE(msg.find("write " + file->path() + " at offset "), std::string::npos) << msg;
  EXPECT_NE(msg.find("ENOSPC"), std::string::npos) << msg;
  EXPECT_NE(msg.find("disk full"), std::string::npos) << msg;
  EXPECT_GT(write.done_bytes, 0u) << "some data fit before the disk filled";
  EXPECT_LT(write.done_bytes, kLengthBytes);
  ASSERT_OK(file->Close());
}

TEST_P(BackendTest, WakeFromAnotherThreadEndsAnUnboundedPoll) {
  const auto start = std::chrono::steady_clock::now();
  std::thread waker([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backend_->Wake();
  });
  ASSERT_OK(backend_->Poll(-1));
  const auto waited = std::chrono::steady_clock::now() - start;
  waker.join();
  EXPECT_GE(waited, std::chrono::milliseconds(40));
  EXPECT_EQ(backend_->PopCompleted(), nullptr) << "a wake-up is not a request";
  // The wake-up was consumed: a bounded Poll now times out.
  const auto again = std::chrono::steady_clock::now();
  ASSERT_OK(backend_->Poll(20'000'000));
  EXPECT_GE(std::chrono::steady_clock::now() - again, std::chrono::milliseconds(15));
  // And the eventfd read is re-armed: a second Wake works.
  backend_->Wake();
  ASSERT_OK(backend_->Poll(-1));
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Sync" : "Uring"; });

}  // namespace
}  // namespace dmalog::io

// FaultBackend: injected faults (EIO, ENOSPC, short transfers, torn writes,
// seeded fail probability) reach the caller named, on both backends.
#include <linux/falloc.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/io/fault_backend_util.h"

namespace dmalog::io {
namespace {

using namespace fault_test;  // NOLINT: the shared fixture and helpers.

TEST_P(FaultBackendTest, DescribesItselfAroundTheInnerBackend) {
  std::unique_ptr<FaultBackend> fb = Open();
  ASSERT_NE(fb, nullptr);
  EXPECT_EQ(fb->kind(), BackendKind::kFault);
  EXPECT_EQ(fb->Describe().rfind("fault(", 0), 0u) << fb->Describe();
  EXPECT_GT(fb->capacity(), 0u);
}

TEST_P(FaultBackendTest, InjectedEioNamesTheCauseAndThePath) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("eio");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1);
  AlignedBuf b = Pattern(kBlockBytes, 2);
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));
  fb->InjectAt(1, FaultSpec::Eio(OpFilter::kWrite));
  const Status st = Write(*fb, fd, path, b.get(), kBlockBytes, 0);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_EQ(st.sys_errno(), EIO);
  EXPECT_NE(st.message().find("EIO"), std::string_view::npos) << st.ToString();
  EXPECT_NE(st.message().find(path), std::string_view::npos) << st.ToString();
  EXPECT_EQ(fb->faults_fired(FaultKind::kEIO), 1u);
  // Nothing reached the file.
  EXPECT_EQ(ReadWholeFile(path), PatternVec(kBlockBytes, 1));
  // The rule fired once; the next write succeeds.
  ASSERT_OK(Write(*fb, fd, path, b.get(), kBlockBytes, 0));
}

TEST_P(FaultBackendTest, InjectedEnospcIsDiskFull) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("enospc");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1);
  fb->InjectAt(1, FaultSpec::NoSpace(OpFilter::kWrite));
  const Status st = Write(*fb, fd, path, a.get(), kBlockBytes, 0, IoOp::kWriteFdatasync);
  EXPECT_TRUE(st.IsNoSpace()) << st.ToString();
  EXPECT_EQ(st.sys_errno(), ENOSPC);
  EXPECT_NE(st.message().find("ENOSPC"), std::string_view::npos) << st.ToString();
  EXPECT_NE(st.message().find("disk full"), std::string_view::npos) << st.ToString();
  EXPECT_NE(st.message().find(path), std::string_view::npos) << st.ToString();
  EXPECT_TRUE(ReadWholeFile(path).empty());
}

TEST_P(FaultBackendTest, InjectAtCountsOnlyMatchingOps) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("count");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1);
  fb->InjectAt(3, FaultSpec::Eio(OpFilter::kWrite));
  fb->InjectAt(1, FaultSpec::Eio(OpFilter::kSync));
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));  // Write 1.
  IoRequest read = testing::MakeRequest(IoOp::kRead, fd, a.get(), kBlockBytes, 0, path);
  ASSERT_OK(RunBlocking(*fb, &read));                        // Reads do not count as writes.
  EXPECT_TRUE(Sync(*fb, fd, path).IsIOError());              // Sync 1.
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));  // Write 2.
  EXPECT_TRUE(Write(*fb, fd, path, a.get(), kBlockBytes, 0).IsIOError());  // Write 3.
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));                // Write 4.
  ASSERT_OK(Sync(*fb, fd, path));
  EXPECT_EQ(fb->ops_seen(OpFilter::kWrite), 4u);
  EXPECT_EQ(fb->ops_seen(OpFilter::kRead), 1u);
  EXPECT_EQ(fb->ops_seen(OpFilter::kSync), 2u);
  EXPECT_EQ(fb->ops_seen(OpFilter::kAny), 7u);
  EXPECT_EQ(fb->faults_fired(), 2u);
}

TEST_P(FaultBackendTest, ShortTransfersCompleteInFullWithResubmits) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("short");
  const int fd = OpenFile(path);
  constexpr uint64_t kLength = 16 * kBlockBytes;
  AlignedBuf out = Pattern(kLength, 3);
  fb->InjectAt(1, FaultSpec::ShortTransfer(OpFilter::kWrite, 3 * kBlockBytes));
  IoRequest write = testing::MakeRequest(IoOp::kWriteFdatasync, fd, out.get(), kLength, 0, path);
  ASSERT_OK(RunBlocking(*fb, &write));
  EXPECT_EQ(write.done_bytes, kLength);
  EXPECT_GT(write.resubmits, 0u);
  EXPECT_TRUE(write.sync_done);
  EXPECT_EQ(ReadWholeFile(path), PatternVec(kLength, 3));

  AlignedBuf in = Pattern(kLength, 99);
  fb->InjectAt(1, FaultSpec::ShortTransfer(OpFilter::kRead, FaultSpec::kRandomBytes));
  IoRequest read = testing::MakeRequest(IoOp::kRead, fd, in.get(), kLength, 0, path);
  ASSERT_OK(RunBlocking(*fb, &read));
  EXPECT_EQ(read.done_bytes, kLength);
  EXPECT_GT(read.resubmits, 0u);
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), kLength));
  EXPECT_EQ(fb->faults_fired(FaultKind::kShortTransfer), 2u);
}

TEST_P(FaultBackendTest, InjectedFdatasyncFailureLeavesTheWriteUncovered) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("syncfail");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1), b = Pattern(kBlockBytes, 2);
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0, IoOp::kWriteFdatasync));
  fb->InjectAt(1, FaultSpec::Eio(OpFilter::kSync));
  IoRequest req =
      testing::MakeRequest(IoOp::kWriteFdatasync, fd, b.get(), kBlockBytes, kBlockBytes, path);
  const Status st = RunBlocking(*fb, &req);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find("fdatasync"), std::string_view::npos) << st.ToString();
  EXPECT_FALSE(req.sync_done);
  EXPECT_EQ(ReadWholeFile(path).size(), 2 * kBlockBytes);  // The write half landed.
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(path), PatternVec(kBlockBytes, 1)) << report->ToString();
}

TEST_P(FaultBackendTest, TornWriteKeepsTheSectorPrefixThenEveryOpFails) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("torn");
  const int fd = OpenFile(path);
  AlignedBuf old_data = Pattern(kBlockBytes, 1), new_data = Pattern(kBlockBytes, 2);
  ASSERT_OK(Write(*fb, fd, path, old_data.get(), kBlockBytes, 0, IoOp::kWriteFdatasync));
  fb->InjectAt(1, FaultSpec::TornWrite(3));
  const Status st = Write(*fb, fd, path, new_data.get(), kBlockBytes, 0);  // 8 sectors.
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find("power loss"), std::string_view::npos) << st.ToString();
  EXPECT_TRUE(fb->dead());
  std::vector<uint8_t> want = PatternVec(kBlockBytes, 1);
  std::memcpy(want.data(), new_data.get(), 3 * kSector);
  EXPECT_EQ(ReadWholeFile(path), want);
  // Power is gone: reads, writes and syncs all fail.
  IoRequest read = testing::MakeRequest(IoOp::kRead, fd, old_data.get(), kBlockBytes, 0, path);
  EXPECT_TRUE(RunBlocking(*fb, &read).IsIOError());
  EXPECT_TRUE(Write(*fb, fd, path, new_data.get(), kBlockBytes, 0).IsIOError());
  EXPECT_TRUE(Sync(*fb, fd, path).IsIOError());
  EXPECT_EQ(ReadWholeFile(path), want);
  // The crash that follows keeps the torn prefix (it reached the media).
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(path), want) << report->ToString();
  ASSERT_EQ(report->Count(CrashEvent::Kind::kTorn), 1u) << report->ToString();
  EXPECT_EQ(report->events.back().kept_bytes, 3 * kSector);
  EXPECT_FALSE(fb->SimulateCrash(CrashOptions{}).ok());  // Only once.
}

TEST_P(FaultBackendTest, FailProbabilityIsSeeded) {
  auto pattern = [this](uint64_t seed) {
    std::unique_ptr<FaultBackend> fb = Open(seed);
    const std::string path = dir_.File("prob" + std::to_string(seed));
    const int fd = OpenFile(path);
    AlignedBuf buf = Pattern(kBlockBytes, 1);
    fb->SetFailProbability(0.5, FaultSpec::NoSpace(OpFilter::kWrite));
    std::string outcome;
    for (int i = 0; i < 64; ++i) {
      const Status st = Write(*fb, fd, path, buf.get(), kBlockBytes, 0);
      EXPECT_TRUE(st.ok() || st.IsNoSpace()) << st.ToString();
      outcome += st.ok() ? '.' : 'x';
    }
    return outcome;
  };
  const std::string a = pattern(9);
  EXPECT_EQ(a, pattern(9));
  EXPECT_NE(a.find('x'), std::string::npos) << a;
  EXPECT_NE(a.find('.'), std::string::npos) << a;
}

TEST_P(FaultBackendTest, DirectoryFsyncPassesThrough) {
  std::unique_ptr<FaultBackend> fb = Open();
  const int dir_fd = open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir_fd, 0);
  fds_.push_back(dir_fd);
  const std::string path = dir_.path().string();
  IoRequest req = testing::MakeRequest(IoOp::kFsync, dir_fd, nullptr, 0, 0, path);
  ASSERT_OK(RunBlocking(*fb, &req));
  ASSERT_TRUE(fb->SimulateCrash(CrashOptions{}).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultBackendTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Sync" : "Uring"; });

}  // namespace
}  // namespace dmalog::io

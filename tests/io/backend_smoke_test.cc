// Smoke tests of both backends through OpenBackend and RunBlocking.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/backend.h"
#include "io/run_blocking.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace dmalog::io {
namespace {

class BackendSmokeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    BackendOptions options;
    options.force_fallback = GetParam();
    Result<OpenedBackend> opened = OpenBackend(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    backend_ = std::move(opened->backend);
  }
  std::unique_ptr<Backend> backend_;
  dmalog::testing::TestDir dir_;
};

TEST_P(BackendSmokeTest, BufferedWriteReadRoundTrip) {
  const std::string path = dir_.File("smoke");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> out(10000), in(10000);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 7);
  IoRequest write =
      testing::MakeRequest(IoOp::kWriteFdatasync, fd, out.data(), out.size(), 0, path);
  write.max_transfer_bytes = 3000;
  ASSERT_OK(RunBlocking(*backend_, &write));
  EXPECT_EQ(write.done_bytes, out.size());
  EXPECT_TRUE(write.sync_done);
  in.resize(in.size() + 100);
  IoRequest read = testing::MakeRequest(IoOp::kRead, fd, in.data(), in.size(), 0, path);
  ASSERT_OK(RunBlocking(*backend_, &read));
  EXPECT_EQ(read.done_bytes, out.size());
  EXPECT_EQ(0, std::memcmp(in.data(), out.data(), out.size()));
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendSmokeTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Sync" : "Uring"; });

}  // namespace
}  // namespace dmalog::io

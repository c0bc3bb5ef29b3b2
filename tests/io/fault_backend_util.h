// Shared by the FaultBackend tests (fault_backend_test.cc: fault injection;
// fault_crash_test.cc: crash simulation): patterns, file images, and a
// fixture that wraps the real backend (io_uring, or the fallback when the
// parameter is true) in a FaultBackend.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "io/fault_backend.h"
#include "io/run_blocking.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace dmalog::io::fault_test {

inline constexpr uint64_t kBlockBytes = 4096;
inline constexpr uint64_t kSector = FaultBackend::kSectorBytes;

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuf = std::unique_ptr<uint8_t, FreeDeleter>;

// `length` bytes (a multiple of 4096) of FillPattern(seed), aligned for O_DIRECT.
inline AlignedBuf Pattern(uint64_t length, uint64_t seed) {
  AlignedBuf buf(static_cast<uint8_t*>(std::aligned_alloc(kBlockBytes, length)));
  testing::FillPattern(buf.get(), length, seed);
  return buf;
}

inline std::vector<uint8_t> PatternVec(uint64_t length, uint64_t seed) {
  AlignedBuf buf = Pattern(length, seed);
  return std::vector<uint8_t>(buf.get(), buf.get() + length);
}

inline std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// The expected image: `image` with `data` written at `offset`.
inline void Overlay(std::vector<uint8_t>* image, const std::vector<uint8_t>& data,
                    uint64_t offset) {
  if (image->size() < offset + data.size()) image->resize(offset + data.size(), 0);
  std::memcpy(image->data() + offset, data.data(), data.size());
}

class FaultBackendTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<FaultBackend> Open(uint64_t seed = 1) {
    BackendOptions options;
    options.force_fallback = GetParam();
    Result<OpenedBackend> opened = OpenBackend(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) return nullptr;
    return std::make_unique<FaultBackend>(std::move(opened->backend), FaultBackend::Options{seed});
  }

  // Opens (creating) `name` in the test directory with O_DIRECT.
  int OpenFile(const std::string& path) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
    fds_.push_back(fd);
    return fd;
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
  }

  static Status Write(Backend& backend, int fd, const std::string& path, uint8_t* buf,
                      uint64_t length, uint64_t offset, IoOp op = IoOp::kWrite) {
    IoRequest req = testing::MakeRequest(op, fd, buf, length, offset, path);
    return RunBlocking(backend, &req);
  }
  static Status Sync(Backend& backend, int fd, const std::string& path) {
    IoRequest req = testing::MakeRequest(IoOp::kFdatasync, fd, nullptr, 0, 0, path);
    return RunBlocking(backend, &req);
  }

  dmalog::testing::TestDir dir_;
  std::vector<int> fds_;
};

}  // namespace dmalog::io::fault_test

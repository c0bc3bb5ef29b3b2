#include "tests/io/io_test_util.h"

#include <sys/mount.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace dmalog::io::testing {

IoRequest MakeRequest(IoOp op, int fd, uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                      const std::string& path) {
  IoRequest req;
  req.op = op;
  req.fd = fd;
  req.buf = buf;
  req.length_bytes = length_bytes;
  req.offset_bytes = offset_bytes;
  req.path = path.c_str();
  return req;
}

void FillPattern(uint8_t* buf, uint64_t length_bytes, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < length_bytes; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = static_cast<uint8_t>(x);
  }
}

AlignedBuf AllocAligned(uint64_t length_bytes, uint64_t alignment_bytes) {
  const uint64_t rounded = (length_bytes + alignment_bytes - 1) / alignment_bytes * alignment_bytes;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(alignment_bytes, rounded));
  assert(p != nullptr);
  std::memset(p, 0, rounded);
  return AlignedBuf(p);
}

std::unique_ptr<Backend> OpenTestBackend(bool sync) {
  BackendOptions options;
  options.force_fallback = sync;
  options.require_io_uring = !sync;
  Result<OpenedBackend> opened = OpenBackend(options);
  if (!opened.ok()) return nullptr;
  return std::move(opened->backend);
}

ScopedMount::ScopedMount(const std::string& source, const std::string& type,
                         const std::string& options, const std::string& dir)
    : dir_(dir) {
  std::filesystem::create_directories(dir);
  std::string command = "mount -t " + type + (options.empty() ? "" : " -o " + options) + " " +
                        source + " " + dir + " 2>&1";
  if (std::system(command.c_str()) != 0) {
    error_ = "'" + command + "' failed";
    return;
  }
  mounted_ = true;
}

ScopedMount::~ScopedMount() {
  if (mounted_ && umount2(dir_.c_str(), MNT_DETACH) != 0) {
    std::fprintf(stderr, "umount %s: %s\n", dir_.c_str(), std::strerror(errno));
  }
}

}  // namespace dmalog::io::testing

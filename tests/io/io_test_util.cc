#include "tests/io/io_test_util.h"

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

}  // namespace dmalog::io::testing

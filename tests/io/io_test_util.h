// Helpers shared by the io/ tests.
#pragma once

#include <cstdint>
#include <string>

#include "io/io_request.h"

namespace dmalog::io::testing {

// A request for `op` on `fd`. `buf` and `path` are borrowed and must outlive
// the request.
IoRequest MakeRequest(IoOp op, int fd, uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                      const std::string& path);

// Deterministic bytes that depend on the position, so misplaced data shows.
void FillPattern(uint8_t* buf, uint64_t length_bytes, uint64_t seed);

}  // namespace dmalog::io::testing

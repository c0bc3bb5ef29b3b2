// Alignment arithmetic and page-aligned heap buffers for the engine's
// O_DIRECT I/O. Buffers come from aligned_alloc at open, recovery or tail
// time, never on the write path.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace dmalog::engine {

inline constexpr uint64_t kBufferAlignmentBytes = 4096;

constexpr uint64_t AlignDown(uint64_t value, uint64_t alignment) {
  return value - value % alignment;
}
constexpr uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return AlignDown(value + alignment - 1, alignment);
}
static_assert(AlignUp(1, 512) == 512 && AlignDown(1023, 512) == 512 && AlignUp(512, 512) == 512);

struct AlignedFree {
  void operator()(uint8_t* p) const noexcept { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;

// At least `bytes` bytes, page-aligned (so aligned for any O_DIRECT device);
// null when out of memory.
inline AlignedBuffer AllocateAligned(uint64_t bytes) {
  return AlignedBuffer(static_cast<uint8_t*>(
      std::aligned_alloc(kBufferAlignmentBytes, AlignUp(bytes, kBufferAlignmentBytes))));
}

}  // namespace dmalog::engine

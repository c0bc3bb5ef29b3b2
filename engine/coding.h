// Fixed-width integers in the on-disk formats (records, segment headers,
// hint files): stored in the machine's byte order, which dmalog requires to
// be little-endian (docs/format.md), with memcpy so any alignment works.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace dmalog::engine {

static_assert(std::endian::native == std::endian::little, "the formats are little-endian");

inline void Put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }
inline void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof(v)); }
inline void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof(v)); }
inline uint16_t Get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace dmalog::engine

// Helpers shared by the libFuzzer targets in fuzz/ (header-only: CMake
// builds every fuzz/*_fuzz.cc as its own binary).
//
//   * ByteReader: takes fields off the front of the fuzzer's input.
//   * FixRecordChecksums: rewrites the checksums of a chain of records so
//     that the fuzzer's mutations of lengths, types and sequence numbers
//     reach the code behind the checksum (a fuzzer never guesses XXH3).
//   * FuzzDataDir: a per-process scratch directory under the build tree
//     (DMALOG_FUZZ_DATA_DIR), never /tmp, removed at exit.
#pragma once

#include <unistd.h>
#include <xxhash.h>

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "engine/coding.h"
#include "engine/format.h"

namespace dmalog::fuzz {

// Aborts with `what` when `cond` is false: a property violation is a crash
// that libFuzzer records, in every build type (assert may be compiled out).
#define DMALOG_FUZZ_CHECK(cond, what)                                    \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::fprintf(stderr, "fuzz check failed: %s: %s (%s:%d)\n", #cond, \
                   std::string(what).c_str(), __FILE__, __LINE__);       \
      std::abort();                                                      \
    }                                                                    \
  } while (0)

// Reads fields from the front of the input; past the end, reads zeros and
// empty spans. `data` is borrowed for the reader's life.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const noexcept { return size_ - offset_; }
  bool empty() const noexcept { return offset_ == size_; }

  uint8_t U8() noexcept { return empty() ? 0 : data_[offset_++]; }
  uint16_t U16() noexcept { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() noexcept { return U16() | (static_cast<uint32_t>(U16()) << 16); }
  uint64_t U64() noexcept { return U32() | (static_cast<uint64_t>(U32()) << 32); }

  // Up to `n` bytes (fewer at the end of the input).
  std::span<const uint8_t> Bytes(size_t n) noexcept {
    n = n < remaining() ? n : remaining();
    std::span<const uint8_t> out(data_ + offset_, n);
    offset_ += n;
    return out;
  }
  std::string String(size_t n) {
    std::span<const uint8_t> b = Bytes(n);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::span<const uint8_t> Rest() noexcept { return Bytes(remaining()); }

 private:
  const uint8_t* data_;  // Borrowed.
  size_t size_;
  size_t offset_ = 0;
};

// Records in a chain that FixRecordChecksums will visit, at most: a bound
// on its loop (a 4 MiB segment of header-only records has fewer).
inline constexpr size_t kFixedRecordsMax = (4u << 20) / format::kRecordHeaderBytes;

// Walks `body` as a chain of records from its first byte and rewrites each
// record's checksum for segment `segment_id`, stopping at the first header
// that is all zero, whose lengths exceed the format's limits, or whose
// record does not fit. Types and flags are left as they are (the decoder
// still judges them). Returns the number of records fixed.
inline size_t FixRecordChecksums(std::span<uint8_t> body, uint64_t segment_id) {
  size_t offset = 0;
  size_t fixed = 0;
  for (; fixed < kFixedRecordsMax; ++fixed) {
    if (body.size() - offset < format::kRecordHeaderBytes) break;
    uint8_t* p = body.data() + offset;
    const size_t key_bytes = engine::Get16(p + format::kRecordKeyLenOffset);
    const size_t value_bytes = engine::Get32(p + format::kRecordValueLenOffset);
    if (key_bytes > format::kKeyBytesMax || value_bytes > format::kBatchBytesMax) break;
    const size_t total = format::kRecordHeaderBytes + key_bytes + value_bytes;
    if (body.size() - offset < total) break;
    bool zero = true;
    for (size_t i = 8; i < format::kRecordHeaderBytes && zero; ++i) zero = p[i] == 0;
    if (zero) break;
    const uint64_t sum = XXH3_64bits_withSeed(p + 8, total - 8, segment_id);
    std::memcpy(p + format::kRecordChecksumOffset, &sum, sizeof(sum));
    offset += total;
  }
  return fixed;
}

// A fresh directory for this process under the build tree:
// DMALOG_FUZZ_DATA_DIR/<name>.<pid>. Created on the first call, removed at
// exit unless DMALOG_KEEP_FUZZ_DATA is set.
inline const std::filesystem::path& FuzzDataDir(const char* name) {
  static const std::filesystem::path dir = [name] {
    std::filesystem::path p = std::filesystem::path(DMALOG_FUZZ_DATA_DIR) /
                              (std::string(name) + "." + std::to_string(getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    std::atexit([] {
      if (std::getenv("DMALOG_KEEP_FUZZ_DATA") != nullptr) return;
      std::error_code ec;
      std::filesystem::remove_all(FuzzDataDir(nullptr), ec);
    });
    return p;
  }();
  return dir;
}

}  // namespace dmalog::fuzz

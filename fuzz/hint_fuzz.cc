// Fuzzes the hint-file decoder (engine/hint_file.h, DecodeHint) over
// arbitrary bytes: it must never crash; it returns either a clean error
// (Corruption or Unsupported, naming the file) or entries that lie inside
// the segment's data, in log order, with strictly increasing sequences and
// keys inside the input; and what decodes must encode back to the same
// bytes (EncodeHint).
//
// Input: flags(1) then the hint file's bytes.
//   flags bit 0: rewrite the trailer checksum (XXH3-64 of everything before
//                the last 8 bytes) first, so that mutations reach the code
//                behind it (a fuzzer never guesses XXH3).
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "engine/hint_file.h"
#include "fuzz/fuzz_util.h"

namespace dmalog::fuzz {
namespace {

constexpr char kPath[] = "fuzz.hint";

void FixTrailerChecksum(std::span<uint8_t> bytes) {
  if (bytes.size() < format::kHintTrailerBytes) return;
  const size_t body = bytes.size() - format::kHintTrailerBytes;
  const uint64_t sum = XXH3_64bits(bytes.data(), body);
  std::memcpy(bytes.data() + body, &sum, sizeof(sum));
}

bool Within(std::string_view view, std::span<const uint8_t> input) {
  const auto* p = reinterpret_cast<const uint8_t*>(view.data());
  return view.empty() || (p >= input.data() && p + view.size() <= input.data() + input.size());
}

void CheckDecoded(const engine::DecodedHint& d, std::span<const uint8_t> input) {
  const engine::HintHeader& h = d.header;
  DMALOG_FUZZ_CHECK(h.end_bytes <= h.segment_size_bytes, "end past the segment");
  DMALOG_FUZZ_CHECK(h.segment_size_bytes >= format::kSegmentSizeBytesMin &&
                        h.segment_size_bytes <= format::kSegmentSizeBytesMax,
                    "segment size");
  DMALOG_FUZZ_CHECK(d.entries.size() <= format::kHintEntriesMax, "entry count");
  uint64_t previous_sequence = 0;
  uint32_t previous_offset = 0;
  for (const engine::HintEntry& e : d.entries) {
    DMALOG_FUZZ_CHECK(e.type == format::kPutType || e.type == format::kDeleteType, "type");
    DMALOG_FUZZ_CHECK(e.sequence > previous_sequence, "sequences out of order");
    DMALOG_FUZZ_CHECK(e.record_offset_bytes >= previous_offset, "offsets out of log order");
    DMALOG_FUZZ_CHECK(e.record_offset_bytes >= format::kSegmentHeaderEncodedBytes,
                      "record inside the segment header");
    DMALOG_FUZZ_CHECK(e.record_bytes >= format::kRecordHeaderBytes, "record bytes");
    DMALOG_FUZZ_CHECK(uint64_t{e.record_offset_bytes} + e.record_bytes <= h.end_bytes,
                      "record past the end");
    DMALOG_FUZZ_CHECK(e.key.size() <= format::kKeyBytesMax, "key size");
    DMALOG_FUZZ_CHECK(Within(e.key, input), "key outside the input");
    previous_sequence = e.sequence;
    previous_offset = e.record_offset_bytes;
  }
  if (!d.entries.empty()) {
    DMALOG_FUZZ_CHECK(h.first_sequence == d.entries.front().sequence, "first sequence");
    DMALOG_FUZZ_CHECK(h.last_sequence == d.entries.back().sequence, "last sequence");
  }
  const std::string again = engine::EncodeHint(h, d.entries);
  DMALOG_FUZZ_CHECK(again.size() == input.size(), "re-encoded size");
  DMALOG_FUZZ_CHECK(std::memcmp(again.data(), input.data(), input.size()) == 0,
                    "re-encoded bytes differ");
}

}  // namespace
}  // namespace dmalog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmalog;
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.U8();
  std::span<const uint8_t> rest = in.Rest();
  // A copy the exact size of the input, so ASan flags any read past it.
  std::vector<uint8_t> bytes(rest.begin(), rest.end());
  if (flags & 1) fuzz::FixTrailerChecksum(bytes);
  Result<engine::DecodedHint> d = engine::DecodeHint(bytes, fuzz::kPath);
  if (!d.ok()) {
    DMALOG_FUZZ_CHECK(d.status().IsCorruption() || d.status().IsUnsupported(),
                      d.status().ToString());
    DMALOG_FUZZ_CHECK(d.status().message().find(fuzz::kPath) != std::string::npos,
                      "the error names the file");
    return 0;
  }
  fuzz::CheckDecoded(*d, bytes);
  return 0;
}

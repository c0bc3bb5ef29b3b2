// Fuzzes the record codec (engine/record.h) over arbitrary bytes:
// DecodeRecord, DecodeSegmentHeader and BatchReader must never crash, every
// view they return must lie inside the input, and what decodes must encode
// back to the same bytes.
//
// Input: flags(1) segment_id_low(1) then the bytes to decode.
//   flags bit 0: rewrite the checksums of the record chain first (see
//                FixRecordChecksums), so mutations reach the code behind
//                the checksum;
//   flags bit 1: rewrite the segment header checksum of the first 48 bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "engine/record.h"
#include "fuzz/fuzz_util.h"

namespace dmalog::fuzz {
namespace {

// Records decoded per input, at most (each advances at least one header).
constexpr size_t kRecordsPerInputMax = 1u << 16;
// Batch entries read per batch, at most: the count the format allows, and
// one more to see the end.
constexpr size_t kBatchStepsMax = format::kBatchEntriesMax + 1;

bool Within(std::string_view view, const uint8_t* begin, size_t size) {
  const auto* p = reinterpret_cast<const uint8_t*>(view.data());
  return view.empty() || (p >= begin && p + view.size() <= begin + size);
}

// Reads a batch payload to its end; entries must lie inside the payload.
void CheckBatch(std::string_view payload) {
  const auto* base = reinterpret_cast<const uint8_t*>(payload.data());
  engine::BatchReader reader(payload);
  Result<uint32_t> count = reader.Count();
  uint32_t read = 0;
  for (size_t step = 0; step < kBatchStepsMax; ++step) {
    Result<engine::BatchEntry> entry = reader.Next();
    if (!entry.ok()) {
      DMALOG_FUZZ_CHECK(entry.status().IsNotFound() || entry.status().IsCorruption(),
                        entry.status().ToString());
      // A clean end means the declared count was read exactly.
      if (entry.status().IsNotFound()) DMALOG_FUZZ_CHECK(count.ok() && *count == read, "count");
      return;
    }
    DMALOG_FUZZ_CHECK(count.ok(), "an entry from a batch with a bad count");
    DMALOG_FUZZ_CHECK(entry->type == format::kPutType || entry->type == format::kDeleteType,
                      "entry type");
    DMALOG_FUZZ_CHECK(Within(entry->key, base, payload.size()), "batch key outside payload");
    DMALOG_FUZZ_CHECK(Within(entry->value, base, payload.size()), "batch value outside payload");
    DMALOG_FUZZ_CHECK(entry->key.size() <= format::kKeyBytesMax, "batch key size");
    ++read;
  }
  DMALOG_FUZZ_CHECK(false, "batch walk did not end");
}

// A decoded put, delete or batch re-encodes to exactly its source bytes.
void CheckRoundTrip(const engine::RecordView& r, std::span<const uint8_t> src,
                    uint64_t segment_id) {
  if (r.type < format::kPutType || r.type > format::kBatchType) return;
  if (r.type != format::kBatchType && r.value.size() > format::kValueBytesMax) return;
  std::vector<uint8_t> again(r.encoded_bytes);
  DMALOG_FUZZ_CHECK((r.flags & ~format::kRecordFlagsKnown) == 0, "unknown flag decoded");
  const size_t n =
      engine::EncodeRecord(again, segment_id, r.type, r.sequence, r.key, r.value, r.flags);
  DMALOG_FUZZ_CHECK(n == r.encoded_bytes, "re-encoded size");
  DMALOG_FUZZ_CHECK(std::memcmp(again.data(), src.data(), n) == 0, "re-encoded bytes differ");
}

void CheckRecords(std::span<const uint8_t> bytes, uint64_t segment_id) {
  size_t offset = 0;
  for (size_t i = 0; i < kRecordsPerInputMax && offset < bytes.size(); ++i) {
    std::span<const uint8_t> src = bytes.subspan(offset);
    const engine::DecodeResult d = engine::DecodeRecord(src, segment_id);
    if (d.outcome != engine::DecodeOutcome::kRecord) {
      DMALOG_FUZZ_CHECK(std::string(engine::DecodeOutcomeName(d.outcome)) != "unknown", "name");
      // Resynchronise one header later, as a scanner looking for records would.
      offset += format::kRecordHeaderBytes;
      continue;
    }
    const engine::RecordView& r = d.record;
    DMALOG_FUZZ_CHECK(r.encoded_bytes >= format::kRecordHeaderBytes, "encoded_bytes");
    DMALOG_FUZZ_CHECK(r.encoded_bytes <= src.size(), "record longer than its input");
    DMALOG_FUZZ_CHECK(r.encoded_bytes == format::kRecordHeaderBytes + r.key.size() + r.value.size(),
                      "lengths");
    DMALOG_FUZZ_CHECK(Within(r.key, src.data(), r.encoded_bytes), "key outside the record");
    DMALOG_FUZZ_CHECK(Within(r.value, src.data(), r.encoded_bytes), "value outside the record");
    if (r.type == format::kBatchType) CheckBatch(r.value);
    CheckRoundTrip(r, src, segment_id);
    offset += r.encoded_bytes;
  }
}

void CheckSegmentHeader(std::span<const uint8_t> bytes) {
  Result<engine::SegmentHeader> h = engine::DecodeSegmentHeader(bytes, "fuzz.seg");
  if (!h.ok()) {
    DMALOG_FUZZ_CHECK(h.status().IsCorruption() || h.status().IsUnsupported(),
                      h.status().ToString());
    DMALOG_FUZZ_CHECK(h.status().message().find("fuzz.seg") != std::string::npos,
                      "the error names the file");
    return;
  }
  const uint32_t align = h->write_alignment_bytes;
  DMALOG_FUZZ_CHECK(align >= 512 && (align & (align - 1)) == 0, "alignment");
  DMALOG_FUZZ_CHECK(
      h->segment_size_bytes >= format::kSegmentSizeBytesMin && h->segment_size_bytes % align == 0,
      "segment size");
  uint8_t again[format::kSegmentHeaderEncodedBytes];
  engine::EncodeSegmentHeader(again, *h);
  Result<engine::SegmentHeader> h2 = engine::DecodeSegmentHeader(again, "fuzz.seg");
  DMALOG_FUZZ_CHECK(h2.ok(), h2.status().ToString());
  DMALOG_FUZZ_CHECK(h2->shard == h->shard && h2->segment_id == h->segment_id &&
                        h2->write_alignment_bytes == align &&
                        h2->segment_size_bytes == h->segment_size_bytes,
                    "header round trip");
}

void FixHeaderChecksum(std::span<uint8_t> bytes) {
  if (bytes.size() < format::kSegmentHeaderEncodedBytes) return;
  const uint64_t sum = XXH3_64bits(bytes.data(), format::kSegmentHeaderChecksumOffset);
  std::memcpy(bytes.data() + format::kSegmentHeaderChecksumOffset, &sum, sizeof(sum));
}

}  // namespace
}  // namespace dmalog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmalog;
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.U8();
  const uint64_t segment_id = in.U8();
  std::span<const uint8_t> rest = in.Rest();
  // A copy the exact size of the input, so ASan flags any read past it.
  std::vector<uint8_t> bytes(rest.begin(), rest.end());
  if (flags & 1) fuzz::FixRecordChecksums(bytes, segment_id);
  if (flags & 2) fuzz::FixHeaderChecksum(bytes);
  fuzz::CheckRecords(bytes, segment_id);
  fuzz::CheckSegmentHeader(bytes);
  fuzz::CheckBatch(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return 0;
}

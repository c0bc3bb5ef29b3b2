// Fuzzes recovery (engine/recovery.cc) over a directory image of several
// segments. For each recovery mode the image is written into a fresh
// one-shard database (4 MiB segments) under the build tree and opened. Open
// must end in a clean error (a Status with a message) or in a database
// that:
//   * holds only key/value pairs some checksummed record of the image wrote
//     (and Get agrees with Scan);
//   * reopens to the same contents (recovery is idempotent: what it drops
//     stays dropped), both through the clean-close marker its Close wrote
//     (which the reopen must use, in the modes that repair the log) and
//     through the full recovery, the marker removed;
//   * after tolerate_corrupted_tail_records or point_in_time, is clean:
//     absolute_consistency opens it, with the same contents;
//   * accepts a new write that survives a reopen, next to the same contents.
// Never a crash, an assert or a hang.
//
// Input: count(1), then per segment control(1) body_len(2, LE) body; the
// last segment takes whatever remains when body_len overruns.
//   count bits 0-1: segments - 1 (segment ids 1..4);
//   count bit 2:    also leave a stray "00000009.seg.tmp";
//   count bits 6-7: the mode that also gets the reopen and write checks.
//   control bit 0:  rewrite the record checksums of the body's chain;
//   control bit 1:  the body is the whole file, header included (else a
//                   valid header block precedes it);
//   control bit 2:  with bit 1, rewrite the header's checksum;
//   control bit 3:  do not pad the file to the segment size (a short file);
//   control bits 4-5: header alignment = device alignment << bits (max 64 KiB);
//   control bit 6:  header segment size 8 MiB (the file stays 4 MiB).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dmalog/engine.h"
#include "engine/record.h"
#include "engine/segment.h"
#include "fuzz/fuzz_util.h"

namespace dmalog::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSegmentBytes = format::kSegmentSizeBytesMin;
constexpr size_t kSegmentsMax = 4;
constexpr uint64_t kScanKeysMax = 1u << 20;
constexpr RecoveryMode kModes[] = {RecoveryMode::kTolerateCorruptedTailRecords,
                                   RecoveryMode::kAbsoluteConsistency, RecoveryMode::kPointInTime,
                                   RecoveryMode::kSkipAnyCorruptedRecords};
static_assert(sizeof(kModes) / sizeof(kModes[0]) == 4, "two bits choose the write-check mode");

using Pairs = std::set<std::pair<std::string, std::string>>;
using Contents = std::map<std::string, std::string>;

// What a fresh database on this filesystem looks like: its MANIFEST text and
// the write alignment its segments use. Learned once per process.
struct Template {
  std::string manifest;
  uint32_t alignment_bytes = 0;
};

Options DbOptions(const std::string& path, RecoveryMode mode) {
  Options o;
  o.db_path = path;
  o.shard_count = 1;
  o.segment_size_bytes = kSegmentBytes;
  o.recovery_mode = mode;
  o.quiet = true;
  return o;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const Template& GetTemplate() {
  static const Template t = [] {
    const fs::path db = FuzzDataDir("recovery_fuzz") / "template";
    Result<std::unique_ptr<Engine>> e = Engine::Open(DbOptions(db, kModes[0]));
    DMALOG_FUZZ_CHECK(e.ok(), e.status().ToString());
    DMALOG_FUZZ_CHECK((*e)->Close().ok(), "close");
    Template out;
    out.manifest = ReadFile(db / "MANIFEST");
    const std::string seg = ReadFile(db / "shard-000" / engine::SegmentFileName(1));
    Result<engine::SegmentHeader> h = engine::DecodeSegmentHeader(
        std::span(reinterpret_cast<const uint8_t*>(seg.data()), seg.size()), "template");
    DMALOG_FUZZ_CHECK(h.ok(), h.status().ToString());
    out.alignment_bytes = h->write_alignment_bytes;
    return out;
  }();
  return t;
}

struct SegmentImage {
  uint64_t id = 0;
  std::vector<uint8_t> bytes;  // The file's bytes before zero padding.
  uint64_t file_bytes = 0;     // The file's length (>= bytes.size()).
};

SegmentImage BuildSegment(uint64_t id, uint8_t control, std::span<const uint8_t> body) {
  SegmentImage s;
  s.id = id;
  const uint32_t device_align = GetTemplate().alignment_bytes;
  const uint32_t align =
      std::min<uint32_t>(device_align << ((control >> 4) & 3), format::kWriteAlignmentBytesMax);
  size_t body_at = 0;
  if (control & 2) {
    s.bytes.assign(body.begin(), body.end());
    if ((control & 4) && s.bytes.size() >= format::kSegmentHeaderEncodedBytes) {
      const uint64_t sum = XXH3_64bits(s.bytes.data(), format::kSegmentHeaderChecksumOffset);
      std::memcpy(s.bytes.data() + format::kSegmentHeaderChecksumOffset, &sum, sizeof(sum));
    }
    body_at = std::min<size_t>(align, s.bytes.size());
  } else {
    engine::SegmentHeader h;
    h.shard = 0;
    h.segment_id = id;
    h.write_alignment_bytes = align;
    h.segment_size_bytes = (control & 64) ? 2 * kSegmentBytes : kSegmentBytes;
    s.bytes.assign(align, 0);
    engine::EncodeSegmentHeader(s.bytes, h);
    s.bytes.insert(s.bytes.end(), body.begin(), body.end());
    body_at = align;
  }
  if (control & 1) FixRecordChecksums(std::span(s.bytes).subspan(body_at), id);
  s.file_bytes = (control & 8) ? s.bytes.size() : std::max<uint64_t>(kSegmentBytes, s.bytes.size());
  return s;
}

// Every (key, value) a checksummed put or batch entry anywhere in the image
// writes: whatever recovery keeps must come from this set.
Pairs CandidatePairs(const std::vector<SegmentImage>& image) {
  Pairs pairs;
  for (const SegmentImage& s : image) {
    for (size_t at = 0; at < s.bytes.size(); ++at) {
      engine::DecodeResult d = engine::DecodeRecord(std::span(s.bytes).subspan(at), s.id);
      if (d.outcome != engine::DecodeOutcome::kRecord) continue;
      if (d.record.type == format::kPutType) {
        pairs.emplace(std::string(d.record.key), std::string(d.record.value));
      } else if (d.record.type == format::kBatchType) {
        engine::BatchReader reader(d.record.value);
        for (size_t i = 0; i < format::kBatchEntriesMax; ++i) {
          Result<engine::BatchEntry> e = reader.Next();
          if (!e.ok()) break;
          if (e->type == format::kPutType) pairs.emplace(e->key, e->value);
        }
      }
    }
  }
  return pairs;
}

void WriteImage(const fs::path& db, const std::vector<SegmentImage>& image, bool stray_tmp) {
  std::error_code ec;
  fs::remove_all(db, ec);
  const fs::path shard = db / "shard-000";
  fs::create_directories(shard);
  std::ofstream(db / "MANIFEST", std::ios::binary) << GetTemplate().manifest;
  for (const SegmentImage& s : image) {
    const fs::path path = shard / engine::SegmentFileName(s.id);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(s.bytes.data()),
               static_cast<std::streamsize>(s.bytes.size()));
    fs::resize_file(path, s.file_bytes);  // Zero padding (a sparse tail).
  }
  if (stray_tmp) std::ofstream(shard / "00000009.seg.tmp") << "half-built";
}

Contents ScanAll(Engine& db) {
  ScanOptions so;
  so.max_keys = kScanKeysMax;
  Result<std::vector<KeyValue>> kvs = db.Scan(so);
  DMALOG_FUZZ_CHECK(kvs.ok(), kvs.status().ToString());
  Contents out;
  for (KeyValue& kv : *kvs) {
    DMALOG_FUZZ_CHECK(out.count(kv.key) == 0, "scan returned a key twice");
    out.emplace(std::move(kv.key), std::move(kv.value));
  }
  return out;
}

enum class Marker : uint8_t {
  kRemove,   // Delete the clean-close marker first: the full recovery runs.
  kKeep,     // Open as the last Close left it.
  kMustUse,  // As kKeep, and the open must have used the marker.
};

// Opens, reads everything, closes; the open must succeed.
Contents OpenAndScan(const Options& o, Marker marker) {
  if (marker == Marker::kRemove) {
    std::error_code ignored;  // Absent when the last Close failed to write it.
    fs::remove(fs::path(o.db_path) / "shard-000" / "CLEAN", ignored);
  }
  Result<std::unique_ptr<Engine>> db = Engine::Open(o);
  DMALOG_FUZZ_CHECK(db.ok(), "reopen in " + std::string(RecoveryModeName(o.recovery_mode)) + ": " +
                                 db.status().ToString());
  if (marker == Marker::kMustUse) {
    DMALOG_FUZZ_CHECK((*db)->Stats().shards.at(0).opened_after_clean_close,
                      "the open after a clean close did not use its marker");
  }
  Contents c = ScanAll(**db);
  Status s = (*db)->Close();
  DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
  return c;
}

void CheckRecovered(const fs::path& db, RecoveryMode mode, const Pairs& candidates,
                    bool reopen_checks) {
  Options o = DbOptions(db, mode);
  Result<std::unique_ptr<Engine>> opened = Engine::Open(o);
  if (!opened.ok()) {
    DMALOG_FUZZ_CHECK(!opened.status().message().empty(), "an error without a message");
    return;
  }
  Engine& e = **opened;
  const Contents first = ScanAll(e);
  for (const auto& [key, value] : first) {
    DMALOG_FUZZ_CHECK(candidates.count({key, value}) == 1, "recovered a pair no record wrote");
    Result<std::string> got = e.Get(key);
    DMALOG_FUZZ_CHECK(got.ok() && *got == value, "Get disagrees with Scan");
  }
  Status s = e.Close();
  DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
  // The reopen checks cost five more opens: one mode per input gets them.
  if (!reopen_checks) return;
  // skip_any_corrupted_records leaves the damage it skipped in place, and
  // the marker path refuses any damage; the other modes leave a clean log.
  const bool clean_log = mode != RecoveryMode::kSkipAnyCorruptedRecords;
  DMALOG_FUZZ_CHECK(OpenAndScan(o, clean_log ? Marker::kMustUse : Marker::kKeep) == first,
                    "the reopen through the clean-close marker differs");
  DMALOG_FUZZ_CHECK(OpenAndScan(o, Marker::kRemove) == first, "recovery is not idempotent");
  const bool repaired =
      mode == RecoveryMode::kTolerateCorruptedTailRecords || mode == RecoveryMode::kPointInTime;
  if (repaired) {
    Options strict = o;
    strict.recovery_mode = RecoveryMode::kAbsoluteConsistency;
    DMALOG_FUZZ_CHECK(OpenAndScan(strict, Marker::kRemove) == first,
                      "repaired log differs under absolute");
    o = strict;
  }
  Result<std::unique_ptr<Engine>> again = Engine::Open(o);
  DMALOG_FUZZ_CHECK(again.ok(), again.status().ToString());
  s = (*again)->Put({}, "fuzz-new-key", "fuzz-new-value");
  DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
  s = (*again)->Close();
  DMALOG_FUZZ_CHECK(s.ok(), s.ToString());
  Contents expected = first;
  expected["fuzz-new-key"] = "fuzz-new-value";
  DMALOG_FUZZ_CHECK(OpenAndScan(o, Marker::kRemove) == expected,
                    "a write after recovery changed the contents");
}

}  // namespace
}  // namespace dmalog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmalog;
  fuzz::ByteReader in(data, size);
  const uint8_t count = in.U8();
  const size_t segments = 1 + (count & 3);
  static_assert(fuzz::kSegmentsMax == 4);
  std::vector<fuzz::SegmentImage> image;
  for (size_t i = 0; i < segments; ++i) {
    const uint8_t control = in.U8();
    const uint16_t body_bytes = in.U16();
    const bool last = i + 1 == segments;
    std::span<const uint8_t> body = last ? in.Rest() : in.Bytes(body_bytes);
    image.push_back(fuzz::BuildSegment(i + 1, control, body));
  }
  const fuzz::Pairs candidates = fuzz::CandidatePairs(image);
  const auto db = fuzz::FuzzDataDir("recovery_fuzz") / "db";
  for (size_t m = 0; m < 4; ++m) {
    fuzz::WriteImage(db, image, count & 4);
    fuzz::CheckRecovered(db, fuzz::kModes[m], candidates, m == static_cast<size_t>(count >> 6));
  }
  return 0;
}

#include "engine/clean_marker.h"

#include <xxhash.h>

#include <cstring>

#include "engine/clean_format.h"
#include "engine/coding.h"

namespace dmalog::engine {
namespace {

std::string MarkerPath(const io::Directory& dir) {
  return dir.path() + "/" + format::kCleanFileName;
}

}  // namespace

std::string EncodeCleanMarker(uint32_t shard, const CleanEnd& end) {
  std::string bytes(format::kCleanFileBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(bytes.data());
  std::memcpy(p, format::kCleanMagic, sizeof(format::kCleanMagic));
  Put32(p + format::kCleanVersionOffset, format::kCleanFormatVersion);
  Put32(p + format::kCleanShardOffset, shard);
  Put64(p + format::kCleanSegmentIdOffset, end.segment_id);
  Put64(p + format::kCleanEndOffset, end.end_bytes);
  Put64(p + format::kCleanLastSequenceOffset, end.last_sequence);
  Put64(p + format::kCleanChecksumOffset, XXH3_64bits(p, format::kCleanChecksumOffset));
  return bytes;
}

Result<CleanEnd> DecodeCleanMarker(std::string_view bytes, uint32_t shard, std::string_view where) {
  const std::string what =
      std::string(where) + ": not a clean-close marker of shard " + std::to_string(shard) + " (";
  if (bytes.size() != format::kCleanFileBytes) {
    return Status::Corruption(what + std::to_string(bytes.size()) + " bytes, not " +
                              std::to_string(format::kCleanFileBytes) + ")");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (std::memcmp(p, format::kCleanMagic, sizeof(format::kCleanMagic)) != 0) {
    return Status::Corruption(what + "bad magic)");
  }
  if (XXH3_64bits(p, format::kCleanChecksumOffset) != Get64(p + format::kCleanChecksumOffset)) {
    return Status::Corruption(what + "checksum mismatch)");
  }
  if (Get32(p + format::kCleanVersionOffset) != format::kCleanFormatVersion) {
    return Status::Corruption(what + "version " +
                              std::to_string(Get32(p + format::kCleanVersionOffset)) + ")");
  }
  if (Get32(p + format::kCleanShardOffset) != shard) {
    return Status::Corruption(what + "it names shard " +
                              std::to_string(Get32(p + format::kCleanShardOffset)) + ")");
  }
  CleanEnd end;
  end.segment_id = Get64(p + format::kCleanSegmentIdOffset);
  end.end_bytes = Get64(p + format::kCleanEndOffset);
  end.last_sequence = Get64(p + format::kCleanLastSequenceOffset);
  return end;
}

Result<std::optional<CleanEnd>> ReadCleanMarker(const io::Directory& dir, uint32_t shard) {
  const std::string path = MarkerPath(dir);
  Result<bool> exists = io::PathExists(path);
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::optional<CleanEnd>();
  // One byte more than a marker: a longer file is reported as too long.
  Result<std::string> bytes = io::ReadSmallFile(path, format::kCleanFileBytes + 1);
  if (!bytes.ok()) return bytes.status();
  Result<CleanEnd> end = DecodeCleanMarker(*bytes, shard, path);
  if (!end.ok()) return end.status();
  return std::optional<CleanEnd>(*end);
}

Status RemoveCleanMarkerDurably(const io::Directory& dir) {
  const std::string path = MarkerPath(dir);
  for (const std::string& p : {path + ".tmp", path}) {
    Result<bool> exists = io::PathExists(p);
    if (!exists.ok()) return exists.status();
    if (!*exists) continue;
    Status s = io::RemoveFileDurably(p);
    if (!s.ok()) return s.WithContext("removing the clean-close marker before the first write");
  }
  return Status::OK();
}

Task<Status> WriteCleanMarker(const io::Directory& dir, uint32_t shard, CleanEnd end) {
  const std::string bytes = EncodeCleanMarker(shard, end);
  co_return co_await io::WriteFileDurablyOnRing(dir, format::kCleanFileName, bytes);
}

}  // namespace dmalog::engine

#include "engine/manifest.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <thread>

#include "engine/format.h"
#include "engine/record.h"
#include "io/fs.h"
#include "scheduler/executor_group.h"

namespace dmalog::engine {
namespace {
constexpr const char* kMagicLine = "dmalog-manifest";
constexpr uint32_t kShardsMax = 64;
// Lines a manifest may have (it has four; later versions may add some).
constexpr int kManifestLinesMax = 64;

bool ParseU64(const std::string& s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}
}  // namespace

std::string EncodeManifest(const Manifest& m) {
  return std::string(kMagicLine) + "\nformat_version=" + std::to_string(m.format_version) +
         "\nshards=" + std::to_string(m.shards) +
         "\nsegment_size_bytes=" + std::to_string(m.segment_size_bytes) + "\n";
}

Result<Manifest> DecodeManifest(const std::string& text, const std::string& path) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kMagicLine) {
    return Status::Corruption(path + ": not a dmalog manifest (first line is not '" +
                              std::string(kMagicLine) + "')");
  }
  Manifest m;
  for (int n = 0; n < kManifestLinesMax && std::getline(in, line); ++n) {
    const size_t eq = line.find('=');
    uint64_t v = 0;
    if (eq == std::string::npos || !ParseU64(line.substr(eq + 1), &v)) {
      return Status::Corruption(path + ": bad line '" + line + "'");
    }
    const std::string key = line.substr(0, eq);
    if (key == "format_version") m.format_version = static_cast<uint32_t>(v);
    if (key == "shards") m.shards = static_cast<uint32_t>(v);
    if (key == "segment_size_bytes") m.segment_size_bytes = v;
  }
  Status version = CheckFormatVersion(m.format_version, path);
  if (!version.ok()) return version;
  if (m.shards == 0 || m.shards > kShardsMax ||
      m.segment_size_bytes < format::kSegmentSizeBytesMin ||
      m.segment_size_bytes > format::kSegmentSizeBytesMax) {
    return Status::Corruption(path + ": implausible shards or segment size");
  }
  return m;
}

Result<Manifest> LoadOrCreateManifest(const Options& o) {
  const std::string path = o.db_path + "/MANIFEST";
  Result<bool> exists = io::PathExists(path);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    if (o.error_if_exists) {
      return Status::InvalidArgument("database " + o.db_path +
                                     " already exists (error_if_exists is set)");
    }
    Result<std::string> text = io::ReadSmallFile(path);
    if (!text.ok()) return text.status();
    return DecodeManifest(*text, path);
  }
  Manifest m;
  m.format_version = format::kFormatVersion;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  m.shards = o.shard_count != 0 ? o.shard_count : std::min<uint32_t>(cpus, sched::kShardsMax);
  m.segment_size_bytes = o.segment_size_bytes;
  DMALOG_RETURN_IF_ERROR(io::WriteFileDurably(path, EncodeManifest(m)));
  return m;
}

}  // namespace dmalog::engine

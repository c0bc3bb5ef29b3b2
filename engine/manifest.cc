#include "engine/manifest.h"

#include <charconv>
#include <sstream>

#include "engine/format.h"
#include "engine/record.h"

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

}  // namespace dmalog::engine

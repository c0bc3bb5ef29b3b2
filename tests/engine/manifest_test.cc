// The manifest's format version: this build opens databases of every
// version from kFormatVersionMin to kFormatVersion and refuses others with
// an error naming both ends.
#include "engine/manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/format.h"

namespace dmalog::engine {
namespace {

Manifest WithVersion(uint32_t version) {
  return Manifest{version, 2, format::kSegmentSizeBytesDefault};
}

TEST(ManifestTest, EveryReadableVersionRoundTrips) {
  for (uint32_t v = format::kFormatVersionMin; v <= format::kFormatVersion; ++v) {
    Result<Manifest> m = DecodeManifest(EncodeManifest(WithVersion(v)), "DB/MANIFEST");
    ASSERT_TRUE(m.ok()) << "version " << v << ": " << m.status().ToString();
    EXPECT_EQ(m->format_version, v);
    EXPECT_EQ(m->shards, 2u);
  }
}

TEST(ManifestTest, VersionsOutsideTheRangeAreUnsupported) {
  for (uint32_t v : {format::kFormatVersionMin - 1, format::kFormatVersion + 1}) {
    Result<Manifest> m = DecodeManifest(EncodeManifest(WithVersion(v)), "DB/MANIFEST");
    ASSERT_FALSE(m.ok()) << "version " << v;
    EXPECT_TRUE(m.status().IsUnsupported()) << m.status().ToString();
    const std::string range = "versions " + std::to_string(format::kFormatVersionMin) + " to " +
                              std::to_string(format::kFormatVersion);
    EXPECT_NE(m.status().ToString().find(range), std::string::npos) << m.status().ToString();
    EXPECT_NE(m.status().ToString().find("DB/MANIFEST"), std::string::npos);
  }
}

}  // namespace
}  // namespace dmalog::engine

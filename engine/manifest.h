// MANIFEST: the database's fixed parameters, a small text file written once
// at creation (atomically, see io::WriteFileDurably) and read at every open.
//
//   dmalog-manifest
//   format_version=1
//   shards=2
//   segment_size_bytes=67108864
#pragma once

#include <cstdint>
#include <string>

#include "dmalog/options.h"
#include "dmalog/status.h"

namespace dmalog::engine {

struct Manifest {
  uint32_t format_version = 0;
  uint32_t shards = 0;
  uint64_t segment_size_bytes = 0;
};

std::string EncodeManifest(const Manifest& manifest);
// Corruption naming `path` and the bad line when the text is not a manifest.
Result<Manifest> DecodeManifest(const std::string& text, const std::string& path);
// Reads DB/MANIFEST, or writes a new one for a new database (shards: the
// option, or one per CPU). InvalidArgument when it exists and
// options.error_if_exists is set.
Result<Manifest> LoadOrCreateManifest(const Options& options);

}  // namespace dmalog::engine

// Helpers shared by the io/ tests.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "io/backend.h"
#include "io/io_request.h"

namespace dmalog::io::testing {

// A request for `op` on `fd`. `buf` and `path` are borrowed and must outlive
// the request.
IoRequest MakeRequest(IoOp op, int fd, uint8_t* buf, uint64_t length_bytes, uint64_t offset_bytes,
                      const std::string& path);

// Deterministic bytes that depend on the seed, so misplaced data shows.
void FillPattern(uint8_t* buf, uint64_t length_bytes, uint64_t seed);

struct FreeDeleter {
  void operator()(uint8_t* p) const noexcept { std::free(p); }
};
using AlignedBuf = std::unique_ptr<uint8_t, FreeDeleter>;
// `length_bytes` rounded up to `alignment_bytes`, zeroed.
AlignedBuf AllocAligned(uint64_t length_bytes, uint64_t alignment_bytes);

// The io_uring backend (sync == false) or the fallback (sync == true).
std::unique_ptr<Backend> OpenTestBackend(bool sync);

// Mounts a filesystem on `dir` (created if needed) for the life of the
// object; unmounts in the destructor. error() is empty on success.
class ScopedMount {
 public:
  // `source`/`type`/`options` as for mount(8), e.g. ("ramfs", "ramfs", "")
  // or (image_path, "ext4", "loop").
  ScopedMount(const std::string& source, const std::string& type, const std::string& options,
              const std::string& dir);
  ~ScopedMount();
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace dmalog::io::testing

// Introspection of the per-thread coroutine frame cache (frame_cache.cc);
// Task's operator new and delete (include/dmalog/task.h) are its users.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmalog::detail {

// Frames this thread's cache holds now, over all size classes.
std::size_t CachedFrameCount() noexcept;
// Whether the cache is on in this build (off under ASan and TSan).
bool FrameCacheEnabled() noexcept;
// How many frames of `bytes` (1 to 2048) the cache keeps at most.
uint32_t FrameCacheClassFramesMax(std::size_t bytes) noexcept;

}  // namespace dmalog::detail

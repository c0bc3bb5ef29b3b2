// Introspection of the per-thread coroutine frame cache (frame_cache.cc);
// Task's operator new and delete (include/dmalog/task.h) are its users.
#pragma once

#include <cstddef>

namespace dmalog::detail {

// Frames this thread's cache holds now, over all size classes.
std::size_t CachedFrameCount() noexcept;
// Whether the cache is on in this build (it is off under AddressSanitizer).
bool FrameCacheEnabled() noexcept;

}  // namespace dmalog::detail

// The per-thread cache of coroutine frames behind Task's operator new.
//
// A frame freed on a thread goes to that thread's cache, whichever thread
// allocated it: frames that migrate (a task started by one executor and
// destroyed by another) simply change caches. Each class holds at most
// kFramesPerClassMax frames and kClassCachedBytesMax bytes, so a burst of
// tasks does not pin memory for ever. Under ASan and TSan the cache is off
// (see kCacheFrames).
#include "scheduler/frame_cache.h"

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>

#include "dmalog/task.h"

namespace dmalog::detail {
namespace {

constexpr std::size_t kFrameClassBytes = 64;
constexpr std::size_t kFrameClassesMax = 32;
constexpr std::size_t kFrameCachedBytesMax = kFrameClassBytes * kFrameClassesMax;
constexpr uint32_t kFramesPerClassMax = 256;
// Bytes a class may hold: larger classes keep fewer frames, so a thread's
// cache holds at most ~2 MiB (32 classes x 64 KiB) however many frames
// migrate to it (a frame freed on another thread stays there).
constexpr std::size_t kClassCachedBytesMax = 64 * 1024;
static_assert(kClassCachedBytesMax / kFrameCachedBytesMax >= 32,
              "even the largest class keeps enough frames for the requests in flight");
static_assert(kFrameClassBytes % __STDCPP_DEFAULT_NEW_ALIGNMENT__ == 0,
              "every class size keeps operator new's alignment");
static_assert(kFrameCachedBytesMax == 2048, "the header promises frames up to 2 KiB");

// Off under the sanitizers: ASan must see a frame's use after free, and TSan
// must see each frame's free and reuse (a reused frame would hide both).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kCacheFrames = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kCacheFrames = false;
#else
constexpr bool kCacheFrames = true;
#endif
#else
constexpr bool kCacheFrames = true;
#endif

struct FreeFrameNode {
  FreeFrameNode* next;
};

// Frames class `cls` may hold.
constexpr uint32_t FramesMax(std::size_t cls) noexcept {
  const std::size_t by_bytes = kClassCachedBytesMax / ((cls + 1) * kFrameClassBytes);
  return by_bytes < kFramesPerClassMax ? static_cast<uint32_t>(by_bytes) : kFramesPerClassMax;
}
static_assert(FramesMax(0) == kFramesPerClassMax && FramesMax(kFrameClassesMax - 1) == 32);

class FrameCache {
 public:
  FrameCache() = default;
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;
  ~FrameCache();

  void* Take(std::size_t cls) noexcept {
    FreeFrameNode* node = heads_[cls];
    if (node == nullptr) return nullptr;
    heads_[cls] = node->next;
    --counts_[cls];
    return node;
  }
  bool Give(std::size_t cls, void* frame) noexcept {
    if (counts_[cls] >= FramesMax(cls)) return false;
    auto* node = static_cast<FreeFrameNode*>(frame);
    node->next = heads_[cls];
    heads_[cls] = node;
    ++counts_[cls];
    return true;
  }
  std::size_t count() const noexcept {
    std::size_t n = 0;
    for (uint32_t c : counts_) n += c;
    return n;
  }

 private:
  FreeFrameNode* heads_[kFrameClassesMax] = {};
  uint32_t counts_[kFrameClassesMax] = {};
};

// Set once this thread's cache is destroyed: a frame freed later in the
// thread's exit (by another thread_local's destructor) goes to the heap, and
// one allocated then comes from it, still rounded up to its class.
thread_local bool cache_destroyed = false;
thread_local FrameCache cache;

FrameCache::~FrameCache() {
  cache_destroyed = true;
  for (std::size_t cls = 0; cls < kFrameClassesMax; ++cls) {
    // Bounded by kFramesPerClassMax frames per class.
    while (void* frame = Take(cls)) ::operator delete(frame);
  }
}

// The class of a frame of `bytes` (> 0): class c holds frames of up to
// (c + 1) * kFrameClassBytes bytes.
std::size_t ClassOf(std::size_t bytes) noexcept { return (bytes - 1) / kFrameClassBytes; }

}  // namespace

void* AllocateFrame(std::size_t bytes) {
  assert(bytes > 0);
  if (!kCacheFrames || bytes > kFrameCachedBytesMax) return ::operator new(bytes);
  const std::size_t cls = ClassOf(bytes);
  if (!cache_destroyed) {
    if (void* frame = cache.Take(cls)) return frame;
  }
  // Rounded up to the class size even when this thread's cache is gone: the
  // frame may be freed into another thread's cache, which hands it out for
  // any frame of its class.
  return ::operator new((cls + 1) * kFrameClassBytes);
}

void FreeFrame(void* frame, std::size_t bytes) noexcept {
  if (frame == nullptr) return;
  if (!kCacheFrames || bytes > kFrameCachedBytesMax || cache_destroyed ||
      !cache.Give(ClassOf(bytes), frame)) {
    ::operator delete(frame);
  }
}

std::size_t CachedFrameCount() noexcept { return cache_destroyed ? 0 : cache.count(); }

bool FrameCacheEnabled() noexcept { return kCacheFrames; }

uint32_t FrameCacheClassFramesMax(std::size_t bytes) noexcept {
  assert(bytes > 0 && bytes <= kFrameCachedBytesMax);
  return FramesMax(ClassOf(bytes));
}

}  // namespace dmalog::detail

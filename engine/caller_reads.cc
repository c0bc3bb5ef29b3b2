#include "engine/caller_reads.h"

#include <cassert>
#include <span>

#include "engine/aligned.h"
#include "io/io_errors.h"
#include "io/sync_backend.h"
#include "scheduler/executor.h"

namespace dmalog::engine {
namespace {

static_assert(CallerReads::kReadBytesMax % kBufferAlignmentBytes == 0);
static_assert(CallerReads::kReadBytesMax >= 2 * format::kWriteAlignmentBytesMax,
              "a small record may span two blocks of the largest alignment");

// The calling thread's read buffer: allocated by its first read on this
// path, grown to the longest read it has made (at most kReadBytesMax), and
// kept until the thread ends.
struct ThreadBuffer {
  AlignedBuffer bytes;
  uint64_t size_bytes = 0;
};
thread_local ThreadBuffer tls_buffer;

uint8_t* ThreadBufferOf(uint64_t bytes) {
  assert(bytes <= CallerReads::kReadBytesMax);
  if (tls_buffer.size_bytes < bytes) {
    const uint64_t size_bytes = AlignUp(bytes, kBufferAlignmentBytes);
    tls_buffer.bytes = AllocateAligned(size_bytes);
    tls_buffer.size_bytes = tls_buffer.bytes ? size_bytes : 0;
  }
  return tls_buffer.bytes.get();
}

}  // namespace

void CallerReads::WritesSettled(uint64_t count) noexcept {
  // Release: a caller that reads the count as 0 sees the index changes made
  // before it dropped.
  const uint64_t before = unindexed_.fetch_sub(count, std::memory_order_release);
  assert(before >= count && "more writes settled than came");
  (void)before;
}

void CallerReads::BeginIndexChange() noexcept {
  const uint32_t before = latch_.fetch_or(kWriterBit, std::memory_order_acquire);
  assert((before & kWriterBit) == 0 && "one index writer: the executor");
  (void)before;
  // Bounded by the searches that entered before the bit was set (callers
  // that come later see it and leave at once); each is one B-tree search.
  if ((latch_.load(std::memory_order_acquire) & ~kWriterBit) == 0) return;
  const uint64_t start_ns = sched::Executor::NowNs();
  for (uint32_t polls = 1; (latch_.load(std::memory_order_acquire) & ~kWriterBit) != 0; ++polls) {
    sched::SpinPause(polls);
  }
  const uint64_t waited_ns = sched::Executor::NowNs() - start_ns;
  if (waited_ns > index_change_wait_ns_max_.load(std::memory_order_relaxed)) {
    index_change_wait_ns_max_.store(waited_ns, std::memory_order_relaxed);
  }
}

void CallerReads::EndIndexChange() noexcept {
  latch_.fetch_and(~kWriterBit, std::memory_order_release);
}

bool CallerReads::TryEnterSearch() noexcept {
  const uint32_t before = latch_.fetch_add(1, std::memory_order_acquire);
  assert((before & ~kWriterBit) < kWriterBit - 1 && "searching callers overflow the latch");
  if ((before & kWriterBit) == 0) return true;
  LeaveSearch();
  return false;
}

void CallerReads::LeaveSearch() noexcept { latch_.fetch_sub(1, std::memory_order_release); }

void CallerReads::Publish(const Segment* segment) noexcept {
  assert(segment != nullptr);
  segments_[segment->id() % kSegmentSlots].store(segment, std::memory_order_release);
}

const Segment* CallerReads::FindSegment(uint32_t id) const noexcept {
  const Segment* s = segments_[id % kSegmentSlots].load(std::memory_order_acquire);
  return s != nullptr && s->id() == id ? s : nullptr;
}

std::optional<Result<std::string>> CallerReads::TryGet(const Index& index, std::string_view key) {
  if (!enabled_) return std::nullopt;
  // Acquire: pairs with WritesSettled, so the index shows every write that
  // came before this load (this thread's own earlier writes included).
  if (unindexed_.load(std::memory_order_acquire) != 0) return std::nullopt;
  if (!TryEnterSearch()) return std::nullopt;
  const std::optional<IndexEntry> entry = index.Find(key);
  LeaveSearch();
  if (!entry) {
    gets_.fetch_add(1, std::memory_order_relaxed);
    return Result<std::string>(Status::NotFound(key));
  }
  const Segment* segment = FindSegment(entry->segment_id);
  if (segment == nullptr) return std::nullopt;
  return Read(*segment, *entry, key);
}

std::optional<Result<std::string>> CallerReads::Read(const Segment& segment,
                                                     const IndexEntry& entry,
                                                     std::string_view key) {
  const uint32_t align = segment.alignment_bytes();
  const uint64_t start = AlignDown(entry.offset_bytes, align);
  const uint64_t length = AlignUp(entry.offset_bytes + entry.record_bytes, align) - start;
  if (length > kReadBytesMax || segment.file().memory_alignment_bytes() > kBufferAlignmentBytes) {
    return std::nullopt;
  }
  uint8_t* buf = ThreadBufferOf(length);
  if (buf == nullptr) return std::nullopt;  // Out of memory: the executor's pool has buffers.
  io::IoRequest req = segment.file().MakeRequest(io::IoOp::kRead, buf, length, start);
  io::ResetProgress(&req);
  io::ExecuteBlocking(&req);
  gets_.fetch_add(1, std::memory_order_relaxed);
  if (!req.status.ok()) return Result<std::string>(std::move(req.status));
  return RecordValueFromRead(segment, entry, key, std::span<const uint8_t>(buf, req.done_bytes),
                             start);
}

}  // namespace dmalog::engine

// The log written by dmalog_logfs (tests/replay/logfs/logfs.cc) and read by
// the flush-point replayer (tests/replay/replay_util.cc). Constants and
// plain structs only; both sides include this header.
//
//   file   := LogHeader Record*
//   Record := RecordHeader [length_bytes of data, for kWrite only]
//
// Records are appended in the order the (single-threaded) daemon handled the
// requests, which is the order they arrived from the kernel. Integers are in
// the host's byte order: the log never leaves the machine that wrote it.
#pragma once

#include <cstdint>

namespace dmalog::replay::logfs {

inline constexpr char kLogMagic[8] = {'D', 'M', 'L', 'G', 'F', 'S', '0', '1'};

struct LogHeader {
  char magic[8];
  uint64_t disk_size_bytes;  // Size of the exposed file (and of the image).
};
static_assert(sizeof(LogHeader) == 16);

enum RecordType : uint32_t {
  kRecordWrite = 1,  // length_bytes of data at offset_bytes follow the header.
  kRecordZero = 2,   // fallocate punch-hole / zero-range: the range reads as zeros.
  kRecordFlush = 3,  // fsync/fdatasync of the file: a device flush of the loop device.
};

struct RecordHeader {
  uint32_t type;          // RecordType.
  uint32_t reserved;      // Zero.
  uint64_t time_ns;       // CLOCK_MONOTONIC when the request arrived at the daemon.
  uint64_t offset_bytes;  // kRecordWrite, kRecordZero: where; kRecordFlush: zero.
  uint64_t length_bytes;  // kRecordWrite, kRecordZero: how much; kRecordFlush: zero.
};
static_assert(sizeof(RecordHeader) == 32);

// The name of the one regular file under the mount point.
inline constexpr char kDiskFileName[] = "disk.img";
// Limits checked by both sides.
inline constexpr uint64_t kDiskSizeBytesMax = 1ull << 30;  // 1 GiB.
inline constexpr uint64_t kWriteBytesMax = 8ull << 20;     // One FUSE write (max_write is less).
static_assert(kWriteBytesMax <= kDiskSizeBytesMax);

}  // namespace dmalog::replay::logfs

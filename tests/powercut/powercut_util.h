// Helpers of the real-kernel power-cut and real-ENOSPC suites: run programs
// (the `dmalog` binary, mkfs, losetup, mount, xfs_io), and a loop-mounted
// filesystem image that is always unmounted and detached.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dmalog/status.h"
#include "tests/process_util.h"

namespace dmalog::testing {

// The full path of `name` found in $PATH, /usr/sbin or /sbin; "" if absent.
std::string FindProgram(const std::string& name);

// Why this machine cannot run a loop-mounted `fs_type` ("ext4" or "xfs")
// with the programs in `programs`: not root, no /dev/loop-control, a missing
// program. Empty when it can.
std::string LoopMountUnavailable(const std::vector<std::string>& programs);

// True when /proc/filesystems lists `fs_type` (after a mount attempt, which
// loads the module if there is one).
bool KernelHasFilesystem(const std::string& fs_type);

// True when the CI environment variable is set: CI must not skip silently.
bool InCi();

// A filesystem image file on a loop device, mounted on demand. The
// destructor unmounts (lazily if a plain unmount fails) and detaches the
// loop device, also after a failed test.
class LoopFilesystem {
 public:
  // `image` and `mount_point` are paths in the build tree; `fs_type` is
  // "ext4" or "xfs". Nothing happens until Create.
  LoopFilesystem(std::string image, std::string mount_point, std::string fs_type);
  ~LoopFilesystem();
  LoopFilesystem(const LoopFilesystem&) = delete;
  LoopFilesystem& operator=(const LoopFilesystem&) = delete;

  // Makes a sparse image of `size_bytes`, runs mkfs on it and attaches it to
  // a free loop device. `mkfs_args` are extra mkfs options.
  Status Create(uint64_t size_bytes, const std::vector<std::string>& mkfs_args);
  Status Mount();    // Mounts the device on mount_point (replays the log).
  Status Unmount();  // Plain unmount; an error if busy.
  // FS_IOC_SHUTDOWN without log flush (`xfs_io -x -c shutdown`): what the
  // device has is what a power cut would leave.
  Status Shutdown();

  const std::string& device() const { return device_; }
  const std::string& mount_point() const { return mount_point_; }
  bool mounted() const { return mounted_; }

 private:
  Status Run(const std::string& program, const std::vector<std::string>& args,
             const std::string& what);

  std::string image_;
  std::string mount_point_;
  std::string fs_type_;
  std::string device_;  // "/dev/loopN" once attached.
  bool mounted_ = false;
};

}  // namespace dmalog::testing

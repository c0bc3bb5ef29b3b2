// System plumbing of the flush-point replay suite (tests/replay): running a
// command, a loop device, a mounted filesystem and the logging FUSE daemon
// (tests/replay/logfs), each released by its destructor (also when a test
// fails half-way), plus the clock the suite compares times with.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dmalog/status.h"

namespace dmalog::testing {

// CLOCK_MONOTONIC in nanoseconds: the clock dmalog_logfs stamps flushes with.
uint64_t MonotonicNowNs();

// "OPERATION FILE: ENAME (message)".
std::string ErrnoText(const std::string& operation, const std::string& file, int err);

// Runs `argv` (argv[0] looked up in PATH), stdout and stderr to `output_path`.
// OK on exit status 0; otherwise IOError naming the command, its status and
// the end of its output.
Status RunCommand(const std::vector<std::string>& argv, const std::string& output_path);

// A flag of the test binary: --name=N on its command line, else the
// environment variable `env`, else `fallback`.
uint64_t ReplayFlag(const std::string& name, const char* env, uint64_t fallback);

// Why the suite cannot run here ("" when it can): not root, no /dev/fuse, no
// /dev/loop-control, or dmalog_logfs not built (`logfs_binary` empty).
std::string ReplayUnavailableReason(const std::string& logfs_binary);

// A loop device over a file, buffered (the default of `losetup --find
// --show FILE`), with autoclear set. Detached by Detach() or the destructor.
class LoopDevice {
 public:
  static Result<std::unique_ptr<LoopDevice>> Attach(const std::string& file);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& path() const { return path_; }  // e.g. /dev/loop3.
  // Detaches now (the kernel finishes once no one has the device open).
  Status Detach();

 private:
  LoopDevice(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// A filesystem mounted with mount(2) (`options` as in mount -o); unmounted by Unmount() or the
// destructor (lazily, MNT_DETACH, if a plain unmount keeps failing).
class MountPoint {
 public:
  static Result<std::unique_ptr<MountPoint>> Mount(const std::string& device,
                                                   const std::string& dir,
                                                   const std::string& fs_type,
                                                   const std::string& options);
  ~MountPoint();
  MountPoint(const MountPoint&) = delete;
  MountPoint& operator=(const MountPoint&) = delete;

  const std::string& dir() const { return dir_; }
  Status Unmount();

 private:
  explicit MountPoint(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  bool mounted_ = true;
};

// A running dmalog_logfs: disk.img under `mount_point`, backed by
// `backing_file`, logging to `log_file`. Stop() unmounts it (fusermount3 -u)
// and checks the daemon's exit status; the destructor does the same,
// killing it if it will not stop.
class LogFs {
 public:
  static Result<std::unique_ptr<LogFs>> Start(const std::string& binary,
                                              const std::string& backing_file,
                                              const std::string& log_file, uint64_t size_bytes,
                                              const std::string& mount_point,
                                              const std::string& stderr_file);
  ~LogFs();
  LogFs(const LogFs&) = delete;
  LogFs& operator=(const LogFs&) = delete;

  std::string disk_path() const;  // MOUNT_POINT/disk.img.
  Status Stop();

 private:
  LogFs(pid_t pid, std::string mount_point, std::string stderr_file)
      : pid_(pid), mount_point_(std::move(mount_point)), stderr_file_(std::move(stderr_file)) {}
  pid_t pid_ = -1;
  std::string mount_point_;
  std::string stderr_file_;
};

}  // namespace dmalog::testing

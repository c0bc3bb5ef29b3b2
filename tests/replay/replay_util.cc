#include "tests/replay/replay_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "tests/replay/logfs/log_format.h"

extern char** environ;

namespace dmalog::testing {
namespace {

// Bounds on the waits below (each pass sleeps kPollSleepUs).
constexpr int kPollSleepUs = 10'000;
constexpr int kMountWaitPassesMax = 500;    // 5 s for the FUSE mount to appear.
constexpr int kUnmountPassesMax = 300;      // 3 s of EBUSY before giving up.
constexpr int kDaemonExitPassesMax = 500;   // 5 s for the daemon to exit.
constexpr int kLoopAttachAttemptsMax = 32;  // Other tests grab free loop devices too.
constexpr size_t kOutputTailBytes = 2000;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text) {
  return text.size() <= kOutputTailBytes ? text : text.substr(text.size() - kOutputTailBytes);
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Starts `argv` with stdin /dev/null and stdout+stderr to `output_path`.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& output_path) {
  assert(!argv.empty());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> copy = argv;
  std::vector<char*> raw;
  for (std::string& a : copy) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::IOError(ErrnoText("posix_spawnp", argv[0], rc), rc);
  return pid;
}

// Waits for `pid`; its exit status, or 128 + the signal that killed it.
int WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool IsMountPoint(const std::string& dir) {
  struct stat here {
  }, parent{};
  if (stat(dir.c_str(), &here) != 0 || stat((dir + "/..").c_str(), &parent) != 0) return false;
  return here.st_dev != parent.st_dev;
}

}  // namespace

uint64_t MonotonicNowNs() {
  timespec ts{};
  const int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
  assert(rc == 0);
  (void)rc;
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string ErrnoText(const std::string& operation, const std::string& file, int err) {
  const char* name = strerrorname_np(err);
  return operation + " " + file + ": " + (name ? name : "errno " + std::to_string(err)) + " (" +
         strerror(err) + ")";
}

Status RunCommand(const std::vector<std::string>& argv, const std::string& output_path) {
  Result<pid_t> pid = Spawn(argv, output_path);
  if (!pid.ok()) return pid.status();
  const int code = WaitExit(*pid);
  if (code == 0) return Status::OK();
  return Status::IOError("`" + Join(argv) + "` exited with status " + std::to_string(code) + ": " +
                         Tail(ReadAll(output_path)));
}

uint64_t ReplayFlag(const std::string& name, const char* env, uint64_t fallback) {
  const std::string prefix = "--" + name + "=";
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    if (arg.rfind(prefix, 0) == 0) return std::strtoull(arg.c_str() + prefix.size(), nullptr, 10);
  }
  const char* value = std::getenv(env);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

std::string ReplayUnavailableReason(const std::string& logfs_binary) {
  if (geteuid() != 0) return "needs root (loop devices, mount, FUSE)";
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "no usable /dev/fuse";
  if (access("/dev/loop-control", R_OK | W_OK) != 0) return "no usable /dev/loop-control";
  if (logfs_binary.empty())
    return "dmalog_logfs was not built (libfuse3-dev missing: scripts/deps.sh)";
  if (access(logfs_binary.c_str(), X_OK) != 0) return "cannot run " + logfs_binary;
  return "";
}

// ---- LoopDevice

Result<std::unique_ptr<LoopDevice>> LoopDevice::Attach(const std::string& file) {
  const int file_fd = open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (file_fd < 0) return Status::IOError(ErrnoText("open", file, errno), errno);
  const int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    const int err = errno;
    close(file_fd);
    return Status::IOError(ErrnoText("open", "/dev/loop-control", err), err);
  }
  Status last = Status::Busy("no free loop device for " + file);
  for (int attempt = 0; attempt < kLoopAttachAttemptsMax; ++attempt) {
    const int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) {
      last = Status::IOError(ErrnoText("LOOP_CTL_GET_FREE", "/dev/loop-control", errno), errno);
      break;
    }
    const std::string path = "/dev/loop" + std::to_string(n);
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      last = Status::IOError(ErrnoText("open", path, errno), errno);
      continue;
    }
    loop_config config{};
    config.fd = static_cast<uint32_t>(file_fd);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;  // Buffered: no LO_FLAGS_DIRECT_IO.
    if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) {
      close(file_fd);  // The loop device holds its own reference.
      close(control);
      return std::unique_ptr<LoopDevice>(new LoopDevice(path, fd));
    }
    last = Status::IOError(ErrnoText("LOOP_CONFIGURE", path + " over " + file, errno), errno);
    close(fd);  // EBUSY: another process took it between the two calls.
  }
  close(file_fd);
  close(control);
  return last;
}

Status LoopDevice::Detach() {
  if (fd_ < 0) return Status::OK();
  Status s;
  // ENXIO: already detached (autoclear).
  if (ioctl(fd_, LOOP_CLR_FD) != 0 && errno != ENXIO) {
    s = Status::IOError(ErrnoText("LOOP_CLR_FD", path_, errno), errno);
  }
  close(fd_);
  fd_ = -1;
  return s;
}

LoopDevice::~LoopDevice() { Detach().IgnoreError(); }  // Failure: autoclear still detaches.

// ---- MountPoint

Result<std::unique_ptr<MountPoint>> MountPoint::Mount(const std::string& device,
                                                      const std::string& dir,
                                                      const std::string& fs_type,
                                                      const std::string& options) {
  if (mount(device.c_str(), dir.c_str(), fs_type.c_str(), 0, options.c_str()) != 0) {
    return Status::IOError(
        ErrnoText("mount -t " + fs_type + " -o " + options + " " + device, dir, errno), errno);
  }
  return std::unique_ptr<MountPoint>(new MountPoint(dir));
}

Status MountPoint::Unmount() {
  if (!mounted_) return Status::OK();
  for (int pass = 0; pass < kUnmountPassesMax; ++pass) {
    if (umount2(dir_.c_str(), 0) == 0) {
      mounted_ = false;
      return Status::OK();
    }
    if (errno != EBUSY) break;
    usleep(kPollSleepUs);
  }
  const int err = errno;
  const int rc = umount2(dir_.c_str(), MNT_DETACH);  // Do not leave it behind.
  mounted_ = rc != 0;
  return Status::IOError(ErrnoText("umount", dir_, err), err);
}

MountPoint::~MountPoint() { Unmount().IgnoreError(); }  // Best effort: the test already failed.

// ---- LogFs

Result<std::unique_ptr<LogFs>> LogFs::Start(const std::string& binary,
                                            const std::string& backing_file,
                                            const std::string& log_file, uint64_t size_bytes,
                                            const std::string& mount_point,
                                            const std::string& stderr_file) {
  Result<pid_t> pid =
      Spawn({binary, backing_file, log_file, std::to_string(size_bytes), mount_point}, stderr_file);
  if (!pid.ok()) return pid.status();
  std::unique_ptr<LogFs> fs(new LogFs(*pid, mount_point, stderr_file));
  const std::string disk = fs->disk_path();
  for (int pass = 0; pass < kMountWaitPassesMax; ++pass) {
    struct stat st {};
    if (stat(disk.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == size_bytes) {
      return fs;
    }
    int status = 0;
    if (waitpid(fs->pid_, &status, WNOHANG) == fs->pid_) {
      fs->pid_ = -1;
      return Status::IOError("dmalog_logfs exited before mounting " + mount_point + ": " +
                             Tail(ReadAll(stderr_file)));
    }
    usleep(kPollSleepUs);
  }
  return Status::IOError("dmalog_logfs did not mount " + mount_point +
                         " within 5 s: " + Tail(ReadAll(stderr_file)));  // The destructor stops it.
}

std::string LogFs::disk_path() const { return mount_point_ + "/" + replay::logfs::kDiskFileName; }

Status LogFs::Stop() {
  if (pid_ < 0) return Status::OK();
  Status s;
  // EBUSY while the loop device still releases disk.img: retry.
  for (int pass = 0; pass < kUnmountPassesMax && IsMountPoint(mount_point_); ++pass) {
    s = RunCommand({"fusermount3", "-u", mount_point_}, stderr_file_ + ".fusermount");
    if (s.ok()) break;
    usleep(kPollSleepUs);
  }
  int status = 0;
  int pass = 0;
  for (; pass < kDaemonExitPassesMax && waitpid(pid_, &status, WNOHANG) != pid_; ++pass) {
    usleep(kPollSleepUs);
  }
  if (pass == kDaemonExitPassesMax) {
    kill(pid_, SIGKILL);
    WaitExit(pid_);
    pid_ = -1;
    if (IsMountPoint(mount_point_)) umount2(mount_point_.c_str(), MNT_DETACH);
    return Status::IOError("dmalog_logfs on " + mount_point_ + " did not stop; killed (" +
                           s.ToString() + ")");
  }
  pid_ = -1;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code != 0) {
    return Status::IOError("dmalog_logfs exited with status " + std::to_string(code) + ": " +
                           Tail(ReadAll(stderr_file_)));
  }
  return Status::OK();
}

LogFs::~LogFs() { Stop().IgnoreError(); }  // Best effort: the test already failed.

}  // namespace dmalog::testing

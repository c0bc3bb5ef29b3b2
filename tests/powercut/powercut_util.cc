#include "tests/powercut/powercut_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dmalog::testing {
namespace {

// A mount, unmount, mkfs or loop command of these small images.
constexpr uint64_t kCommandTimeoutMs = 120'000;
constexpr uint64_t kProgramDirsMax = 64;
constexpr uint64_t kProcFilesystemsLinesMax = 1000;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Describe(const ProcessResult& r) {
  if (!r.started) return "could not be started";
  if (r.timed_out) return "timed out (killed)";
  if (!r.exited) return "killed by signal " + std::to_string(r.code);
  return "exit " + std::to_string(r.code);
}

}  // namespace

std::string FindProgram(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string dirs = std::string(env != nullptr ? env : "") + ":/usr/sbin:/sbin";
  std::stringstream ss(dirs);
  std::string dir;
  for (uint64_t i = 0; i < kProgramDirsMax && std::getline(ss, dir, ':'); ++i) {
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string LoopMountUnavailable(const std::vector<std::string>& programs) {
  if (geteuid() != 0) return "needs root to attach loop devices and mount them; run as root";
  if (access("/dev/loop-control", F_OK) != 0) {
    return "/dev/loop-control is missing: no loop devices here (modprobe loop, or give the "
           "container access to loop devices)";
  }
  for (const std::string& p : programs) {
    if (FindProgram(p).empty()) {
      return p + " is not installed (Debian: util-linux, e2fsprogs, xfsprogs; scripts/deps.sh)";
    }
  }
  return "";
}

bool KernelHasFilesystem(const std::string& fs_type) {
  std::ifstream f("/proc/filesystems");
  std::string line;
  for (uint64_t i = 0; i < kProcFilesystemsLinesMax && std::getline(f, line); ++i) {
    const size_t tab = line.rfind('\t');
    if (line.substr(tab == std::string::npos ? 0 : tab + 1) == fs_type) return true;
  }
  return false;
}

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

LoopFilesystem::LoopFilesystem(std::string image, std::string mount_point, std::string fs_type)
    : image_(std::move(image)),
      mount_point_(std::move(mount_point)),
      fs_type_(std::move(fs_type)) {}

LoopFilesystem::~LoopFilesystem() {
  const std::string dir = std::filesystem::path(image_).parent_path().string();
  if (mounted_ && !Unmount().ok()) {
    // Busy (a process still holds a file): detach it now, the kernel
    // finishes once the last user is gone.
    const ProcessResult r =
        RunProgram(FindProgram("umount"), {"-l", mount_point_}, dir, kCommandTimeoutMs);
    if (!r.exited || r.code != 0) {
      std::fprintf(stderr, "umount -l %s failed: %s%s", mount_point_.c_str(), r.out.c_str(),
                   r.err.c_str());
    }
  }
  if (!device_.empty()) {
    // After a lazy unmount this only marks the device for autoclear.
    const ProcessResult r =
        RunProgram(FindProgram("losetup"), {"-d", device_}, dir, kCommandTimeoutMs);
    if (!r.exited || r.code != 0) {
      std::fprintf(stderr, "losetup -d %s failed: %s%s", device_.c_str(), r.out.c_str(),
                   r.err.c_str());
    }
  }
}

Status LoopFilesystem::Run(const std::string& program, const std::vector<std::string>& args,
                           const std::string& what) {
  const std::string path = FindProgram(program);
  if (path.empty()) return Status::NotFound(what + ": " + program + " is not installed");
  const std::string dir = std::filesystem::path(image_).parent_path().string();
  const ProcessResult r = RunProgram(path, args, dir, kCommandTimeoutMs);
  if (r.exited && r.code == 0) return Status::OK();
  return Status::IOError(what + ": " + program + " " + Describe(r) + ": " + Trim(r.out + r.err));
}

Status LoopFilesystem::Create(uint64_t size_bytes, const std::vector<std::string>& mkfs_args) {
  assert(device_.empty());
  {
    std::ofstream f(image_, std::ios::binary | std::ios::trunc);
    if (!f) return Status::IOError("create image " + image_);
  }
  std::error_code ec;
  std::filesystem::resize_file(image_, size_bytes, ec);  // Sparse.
  if (ec) return Status::IOError("resize image " + image_ + ": " + ec.message());
  std::vector<std::string> args = mkfs_args;
  args.push_back(image_);
  DMALOG_RETURN_IF_ERROR(Run("mkfs." + fs_type_, args, "mkfs." + fs_type_ + " " + image_));
  const std::string dir = std::filesystem::path(image_).parent_path().string();
  const ProcessResult r =
      RunProgram(FindProgram("losetup"), {"--find", "--show", image_}, dir, kCommandTimeoutMs);
  if (!r.exited || r.code != 0 || r.out.rfind("/dev/", 0) != 0) {
    return Status::IOError("losetup --find --show " + image_ + ": " + Describe(r) + ": " +
                           Trim(r.out + r.err));
  }
  device_ = Trim(r.out);
  std::filesystem::create_directories(mount_point_, ec);
  if (ec) return Status::IOError("mkdir " + mount_point_ + ": " + ec.message());
  return Status::OK();
}

Status LoopFilesystem::Mount() {
  assert(!device_.empty() && !mounted_);
  DMALOG_RETURN_IF_ERROR(Run("mount", {"-t", fs_type_, device_, mount_point_},
                             "mount " + device_ + " on " + mount_point_));
  mounted_ = true;
  return Status::OK();
}

Status LoopFilesystem::Unmount() {
  assert(mounted_);
  DMALOG_RETURN_IF_ERROR(Run("umount", {mount_point_}, "umount " + mount_point_));
  mounted_ = false;
  return Status::OK();
}

Status LoopFilesystem::Shutdown() {
  assert(mounted_);
  return Run("xfs_io", {"-x", "-c", "shutdown", mount_point_}, "xfs_io shutdown " + mount_point_);
}

}  // namespace dmalog::testing

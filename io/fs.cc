#include "io/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "io/dma_file.h"
#include "io/io_errors.h"

namespace dmalog::io {
namespace {

// Bound on directory entries one listing returns (segments per shard, plus
// slack); a directory with more is not a dmalog directory.
constexpr size_t kDirectoryEntriesMax = 1u << 20;

// Directory levels CreateDirectories walks at most (PATH_MAX allows fewer).
constexpr uint32_t kPathDepthMax = 4096;

std::string ParentOf(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

Status WriteAll(int fd, const std::string& path, const std::string& contents) {
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SyscallErrorStatus("write", path, errno);
    if (n == 0) return SyscallErrorStatus("write", path, EIO, "the kernel wrote 0 bytes");
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace

Result<DirectoryLock> DirectoryLock::Acquire(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return SyscallErrorStatus("open", path, errno, "check the directory's permissions");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {0};
    const ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "unknown";
      holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
      return Status::Busy("database " + dir + " is locked by pid " + holder +
                          ": close that process (or its other open of this database) first, "
                          "or use another --db directory");
    }
    return SyscallErrorStatus("flock", path, err);
  }
  DirectoryLock lock(fd);
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0) return SyscallErrorStatus("ftruncate", path, errno);
  if (::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    return SyscallErrorStatus("pwrite", path, errno);
  }
  return lock;
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    Unlock();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirectoryLock::~DirectoryLock() { Unlock(); }

void DirectoryLock::Unlock() noexcept {
  if (fd_ >= 0) ::close(fd_);  // Closing the descriptor releases the flock.
  fd_ = -1;
}

Result<Directory> Directory::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SyscallErrorStatus("open", path, errno, "check that the directory exists");
  return Directory(path, fd);
}

Directory::Directory(std::string path, int fd)
    : path_(std::make_unique<const std::string>(std::move(path))), fd_(fd) {}

Directory::Directory(Directory&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

Directory& Directory::operator=(Directory&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Directory::~Directory() {
  if (fd_ >= 0) ::close(fd_);
}

IoAwaitable Directory::Sync() const {
  IoRequest req;
  req.op = IoOp::kFsync;
  req.fd = fd_;
  req.path = path_->c_str();
  return IoAwaitable(req);
}

Status CreateDirectories(const std::string& path) {
  // The first missing ancestor: each directory made below it gets its
  // entry synced into its parent.
  // Symlinks in the existing part resolved, as mkdir resolves them.
  std::error_code ec;
  std::filesystem::path first_new = std::filesystem::weakly_canonical(path, ec);
  if (ec) return SyscallErrorStatus("resolve", path, ec.value(), "check the path");
  for (uint32_t depth = 0; depth < kPathDepthMax; ++depth) {
    const std::filesystem::path parent = first_new.parent_path();
    if (parent == first_new || std::filesystem::exists(parent, ec)) break;
    first_new = parent;
  }
  const bool existed = std::filesystem::exists(path, ec);
  std::filesystem::create_directories(path, ec);
  if (ec) return SyscallErrorStatus("mkdir", path, ec.value(), "check the path and permissions");
  if (!std::filesystem::is_directory(path, ec)) {
    return SyscallErrorStatus("mkdir", path, ENOTDIR, "the path exists and is not a directory");
  }
  if (existed) return Status::OK();
  // Made durable: a crash must not lose a directory whose files were synced.
  const std::filesystem::path made = std::filesystem::canonical(path, ec);
  if (ec) return SyscallErrorStatus("resolve", path, ec.value(), "check the path");
  std::filesystem::path dir = made;
  for (uint32_t depth = 0; depth < kPathDepthMax; ++depth, dir = dir.parent_path()) {
    DMALOG_RETURN_IF_ERROR(SyncDirectory(dir.parent_path().string()));
    if (dir == first_new || dir == dir.parent_path()) break;
  }
  return Status::OK();
}

Result<bool> PathExists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return SyscallErrorStatus("stat", path, errno);
}

Result<std::vector<std::string>> ListDirectory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return SyscallErrorStatus("opendir", dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (names.size() >= kDirectoryEntriesMax) break;
    names.emplace_back(e->d_name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return SyscallErrorStatus("readdir", dir, err);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SyscallErrorStatus("open", path, errno);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return SyscallErrorStatus("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::Corruption(path + " is larger than " + std::to_string(max_bytes) +
                                " bytes: not a file dmalog wrote");
    }
  }
  ::close(fd);
  return out;
}

Status WriteFileDurably(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return SyscallErrorStatus("open", tmp, errno, "check the directory's permissions");
  Status s = WriteAll(fd, tmp, contents);
  if (s.ok() && ::fsync(fd) != 0) s = SyscallErrorStatus("fsync", tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = SyscallErrorStatus("close", tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = SyscallErrorStatus("rename", tmp, errno);
  }
  if (!s.ok()) return s;
  return SyncDirectory(ParentOf(path));
}

Task<Status> WriteFileDurablyOnRing(const Directory& dir, std::string name,
                                    std::string_view contents) {
  const std::string path = dir.path() + "/" + name;
  const std::string tmp = path + ".tmp";
  DmaFileOptions options;
  options.create = true;
  options.truncate = true;
  options.force_buffered = true;  // Any length; the page cache absorbs it.
  Result<DmaFile> file = DmaFile::Open(tmp, options);
  if (!file.ok()) co_return file.status();
  const auto* bytes = reinterpret_cast<const uint8_t*>(contents.data());
  Status s = co_await file->Write(bytes, contents.size(), 0);
  if (s.ok()) s = co_await file->Fdatasync();
  if (s.ok()) s = RenameFile(tmp, path);
  if (s.ok()) s = co_await dir.Sync();
  co_return s;
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return SyscallErrorStatus("rename", from, errno);
  return Status::OK();
}

Status RemoveFileDurably(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return SyscallErrorStatus("unlink", path, errno);
  return SyncDirectory(ParentOf(path));
}

}  // namespace dmalog::io

// Filesystem metadata operations the engine needs at open and close time:
// the database lock, small files written atomically, directory listings.
// Blocking calls, used outside the write and read paths. Errors name the
// call, the path and the errno (see io_errors.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dmalog/status.h"
#include "dmalog/task.h"
#include "io/reactor.h"

namespace dmalog::io {

// An exclusive flock() on DIR/LOCK, held until destruction or Unlock().
class DirectoryLock {
 public:
  // Busy "database DIR is locked by pid N ..." when another process (or
  // another open in this process) holds it. The LOCK file records our pid.
  static Result<DirectoryLock> Acquire(const std::string& dir);
  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();
  void Unlock() noexcept;

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// An open directory, for making entries durable through the executor's
// ring (an fsync of the directory) without blocking the executor thread.
class Directory {
 public:
  static Result<Directory> Open(const std::string& path);
  Directory(Directory&& other) noexcept;
  Directory& operator=(Directory&& other) noexcept;
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;
  ~Directory();
  const std::string& path() const noexcept { return *path_; }
  // fsync of the directory, awaited on an executor thread.
  IoAwaitable Sync() const;

 private:
  Directory(std::string path, int fd);
  std::unique_ptr<const std::string> path_;  // Heap: c_str() survives moves.
  int fd_ = -1;
};

// Creates `path` and its missing parents (mode 0755), and fsyncs the parent
// of each directory it creates, so the new entries survive a crash. OK if it
// exists as a directory.
Status CreateDirectories(const std::string& path);
// true when `path` exists (any type).
Result<bool> PathExists(const std::string& path);
// The names in `dir` (not "." or ".."), sorted.
Result<std::vector<std::string>> ListDirectory(const std::string& dir);
// Reads a whole small file (at most `max_bytes`).
Result<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes = 1u << 20);
// Writes `contents` to `path` atomically and durably: a temporary file,
// fsync, rename over `path`, fsync of the directory.
Status WriteFileDurably(const std::string& path, const std::string& contents);
// The same for an executor thread, which must not block on the fsyncs:
// `name` in `dir` gets `contents` through name.tmp, a write and an
// fdatasync through the ring, a rename, and a directory fsync through the
// ring. Only the open and the rename run on the calling thread (metadata; no
// wait for the device). `dir` and `contents` are borrowed until the task ends.
Task<Status> WriteFileDurablyOnRing(const Directory& dir, std::string name,
                                    std::string_view contents);
// Renames `from` to `to` (same directory; replaces `to`). The caller syncs
// the directory to make it durable.
Status RenameFile(const std::string& from, const std::string& to);
// Removes a file and syncs its directory.
Status RemoveFileDurably(const std::string& path);

}  // namespace dmalog::io

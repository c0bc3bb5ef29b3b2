// OpenBackend, and the names of backend kinds and I/O operations.
#include "io/backend.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "io/io_errors.h"
#include "io/sync_backend.h"
#include "io/uring_backend.h"

namespace dmalog::io {
namespace {

constexpr const char* kIoUringDisabledPath = "/proc/sys/kernel/io_uring_disabled";

// kernel.io_uring_disabled: 0 allowed, 1 only for io_uring_group members and
// CAP_SYS_ADMIN, 2 disabled for everyone. -1 when the file cannot be read
// (kernels before 6.6).
int ReadIoUringDisabled() {
  std::ifstream in(kIoUringDisabledPath);
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

bool IsFallbackErrno(int err) noexcept { return err == EPERM || err == ENOSYS || err == EACCES; }

struct Unavailable {
  std::string cause;  // "io_uring_setup: EPERM; kernel.io_uring_disabled=2"
  std::string fix;    // "run 'sysctl kernel.io_uring_disabled=0'"
};

Unavailable WhyUnavailable(int err) {
  Unavailable why{std::string("io_uring_setup: ") + ErrnoName(err), ""};
  if (err == ENOSYS) {
    why.cause += "; the kernel lacks io_uring";
    why.fix = "run on Linux 5.19 or newer built with CONFIG_IO_URING";
    return why;
  }
  const int disabled = ReadIoUringDisabled();
  if (disabled > 0) {
    why.cause += "; kernel.io_uring_disabled=" + std::to_string(disabled);
    why.fix = "run 'sysctl kernel.io_uring_disabled=0'";
    if (disabled == 1) why.fix += " or add this user to kernel.io_uring_group";
  } else {
    why.cause += "; blocked by seccomp or an LSM (kernel.io_uring_disabled is not set)";
    why.fix =
        "allow io_uring_setup, io_uring_enter and io_uring_register in the container's "
        "seccomp profile";
  }
  return why;
}

void WarnOnce(const std::string& reason) {
  static std::once_flag warned;
  std::call_once(warned, [&] { std::fprintf(stderr, "dmalog: warning: %s\n", reason.c_str()); });
}

Result<OpenedBackend> OpenSync(const BackendOptions& options, std::string reason) {
  Result<std::unique_ptr<SyncBackend>> sync = SyncBackend::Create(options);
  if (!sync.ok()) return std::move(sync).status();
  return OpenedBackend{std::move(sync).value(), std::move(reason)};
}

}  // namespace

const char* BackendKindName(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::kUring:
      return "io_uring";
    case BackendKind::kSync:
      return "sync";
    case BackendKind::kFault:
      return "fault";
  }
  return "unknown";
}

const char* IoOpName(IoOp op) noexcept {
  switch (op) {
    case IoOp::kRead:
      return "read";
    case IoOp::kWrite:
      return "write";
    case IoOp::kFdatasync:
      return "fdatasync";
    case IoOp::kFsync:
      return "fsync";
    case IoOp::kWriteFdatasync:
      return "write+fdatasync";
    case IoOp::kFallocate:
      return "fallocate";
    case IoOp::kNop:
      return "nop";
  }
  return "unknown";
}

namespace {
Result<OpenedBackend> OpenInnerBackend(const BackendOptions& options) {
  if (options.force_fallback) {
    if (options.require_io_uring) {
      return Status::InvalidArgument("OpenBackend: force_fallback and require_io_uring conflict");
    }
    return OpenSync(options, "forced by options");
  }
  Result<std::unique_ptr<UringBackend>> uring = UringBackend::Create(options);
  if (uring.ok()) return OpenedBackend{std::move(uring).value(), std::string()};
  const int err = uring.status().sys_errno();
  if (!IsFallbackErrno(err)) return std::move(uring).status();
  const Unavailable why = WhyUnavailable(err);
  if (options.require_io_uring) {
    return Status::Unsupported(
        "io_uring unavailable (" + why.cause + ") and require_io_uring is set; " + why.fix, err);
  }
  std::string reason =
      "io_uring unavailable (" + why.cause + "): using the thread-pool fallback; " + why.fix;
  if (!options.quiet) WarnOnce(reason);
  return OpenSync(options, std::move(reason));
}
}  // namespace

Result<OpenedBackend> OpenBackend(const BackendOptions& options) {
  Result<OpenedBackend> opened = OpenInnerBackend(options);
  if (!opened.ok() || !options.wrap) return opened;
  opened->backend = options.wrap(std::move(opened->backend));
  return opened;
}

}  // namespace dmalog::io

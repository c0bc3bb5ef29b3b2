// OpenBackend: io_uring when available, the fallback with one warning line
// when io_uring_setup is refused (here by a seccomp filter in a child).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <string>

#include "io/backend.h"
#include "tests/test_util.h"

namespace dmalog::io {
namespace {

int IoUringDisabledSysctl() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = 0;
  in >> value;
  return value;
}

TEST(OpenBackendTest, UsesIoUringWhenTheKernelAllowsIt) {
  if (IoUringDisabledSysctl() == 2) GTEST_SKIP() << "kernel.io_uring_disabled=2";
  Result<OpenedBackend> opened = OpenBackend(BackendOptions{});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->backend->kind(), BackendKind::kUring);
  EXPECT_TRUE(opened->fallback_reason.empty());
  const std::string described = opened->backend->Describe();
  EXPECT_EQ(described.find("io_uring depth=256 flags="), 0u) << described;
  EXPECT_EQ(opened->backend->capacity(), 256u);
  std::printf("%s\n", described.c_str());
}

TEST(OpenBackendTest, ForcedFallback) {
  BackendOptions options;
  options.force_fallback = true;
  options.sync_workers = 3;
  Result<OpenedBackend> opened = OpenBackend(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->backend->kind(), BackendKind::kSync);
  EXPECT_EQ(opened->fallback_reason, "forced by options");
  EXPECT_NE(opened->backend->Describe().find("workers=3"), std::string::npos);
  EXPECT_STREQ(BackendKindName(opened->backend->kind()), "sync");
}

TEST(OpenBackendTest, BadOptionsAreRejected) {
  BackendOptions both;
  both.force_fallback = true;
  both.require_io_uring = true;
  EXPECT_TRUE(OpenBackend(both).status().IsInvalidArgument());
  BackendOptions no_workers;
  no_workers.force_fallback = true;
  no_workers.sync_workers = 0;
  EXPECT_TRUE(OpenBackend(no_workers).status().IsInvalidArgument());
  BackendOptions deep;
  deep.ring_depth = 1u << 20;
  EXPECT_TRUE(OpenBackend(deep).status().IsInvalidArgument());
}

// Makes io_uring_setup fail with EPERM for this process, as a container's
// seccomp profile does.
bool DenyIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// In a child: deny io_uring_setup, open three backends, and report on
// `out_fd` (stderr goes to `err_fd`). Exit code 0 when all went as expected.
int ChildOpensWithSeccomp(int out_fd, int err_fd) {
  dup2(err_fd, STDERR_FILENO);
  if (!DenyIoUringSetup()) return 10;
  BackendOptions strict;
  strict.require_io_uring = true;
  Result<OpenedBackend> refused = OpenBackend(strict);
  if (refused.ok() || !refused.status().IsUnsupported()) return 11;
  Result<OpenedBackend> first = OpenBackend(BackendOptions{});
  Result<OpenedBackend> second = OpenBackend(BackendOptions{});
  if (!first.ok() || !second.ok()) return 12;
  if (first->backend->kind() != BackendKind::kSync) return 13;
  if (second->fallback_reason != first->fallback_reason) return 14;
  const std::string report =
      first->fallback_reason + "\n" + std::string(refused.status().message());
  if (write(out_fd, report.data(), report.size()) != static_cast<ssize_t>(report.size())) return 15;
  return 0;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(OpenBackendTest, SeccompDeniedIoUringFallsBackWithOneWarningLine) {
  if (IoUringDisabledSysctl() != 0) GTEST_SKIP() << "kernel.io_uring_disabled is set";
  int out_pipe[2];
  int err_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  ASSERT_EQ(pipe(err_pipe), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(ChildOpensWithSeccomp(out_pipe[1], err_pipe[1]));
  close(out_pipe[1]);
  close(err_pipe[1]);
  const std::string report = ReadAll(out_pipe[0]);
  const std::string warnings = ReadAll(err_pipe[0]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "child step failed; stderr: " << warnings;
  const std::string reason = report.substr(0, report.find('\n'));
  EXPECT_EQ(reason,
            "io_uring unavailable (io_uring_setup: EPERM; blocked by seccomp or an LSM "
            "(kernel.io_uring_disabled is not set)): using the thread-pool fallback; allow "
            "io_uring_setup, io_uring_enter and io_uring_register in the container's seccomp "
            "profile");
  EXPECT_EQ(warnings, "dmalog: warning: " + reason + "\n") << "one line, printed once";
  EXPECT_EQ(report.substr(report.find('\n') + 1),
            "io_uring unavailable (io_uring_setup: EPERM; blocked by seccomp or an LSM "
            "(kernel.io_uring_disabled is not set)) and require_io_uring is set; allow "
            "io_uring_setup, io_uring_enter and io_uring_register in the container's seccomp "
            "profile");
}

}  // namespace
}  // namespace dmalog::io

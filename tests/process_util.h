// Helpers shared by the test labels that run programs (the kill -9,
// power-cut and serial suites): start a program with its output in files,
// wait for it (with a timeout), read a number out of its report, and read a
// flag of the test binary. Every test binary links tests/process_util.cc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dmalog::testing {

// Wait for a program as long as it takes.
inline constexpr uint64_t kNoTimeoutMs = UINT64_MAX / 2;

// The dmalog binary of this build tree.
inline constexpr char kDmalogBinary[] = DMALOG_TEST_DATA_DIR "/../dmalog";

struct ProcessResult {
  bool started = false;    // false: the program could not be started.
  bool exited = false;     // false: killed by a signal.
  bool timed_out = false;  // The wait gave up and sent SIGKILL.
  int code = -1;           // Exit status, or the signal number when !exited.
  std::string out;
  std::string err;
};

// Starts `program args...` (program: a path) with stdout and stderr going to
// `out_path` and `err_path` (created or truncated); -1 on failure.
pid_t StartProgram(const std::string& program, const std::vector<std::string>& args,
                   const std::string& out_path, const std::string& err_path);
// Waits for `pid` up to `timeout_ms` (then SIGKILLs it and waits for it), and
// reads the two files back.
ProcessResult WaitProgram(pid_t pid, const std::string& out_path, const std::string& err_path,
                          uint64_t timeout_ms = kNoTimeoutMs);
// StartProgram + WaitProgram, output files in `dir`.
ProcessResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                         const std::string& dir, uint64_t timeout_ms);
// RunProgram of kDmalogBinary.
ProcessResult RunDmalog(const std::vector<std::string>& args, const std::string& dir,
                        uint64_t timeout_ms = kNoTimeoutMs);

// The number after `label` in `text` ("... lost 0, ..." -> 0); -1 if absent.
int64_t NumberAfter(const std::string& text, const std::string& label);

// A flag of the test binary: --name=N on its command line, else the
// environment variable `env`, else `fallback`.
uint64_t TestFlag(const std::string& name, const char* env, uint64_t fallback);

}  // namespace dmalog::testing

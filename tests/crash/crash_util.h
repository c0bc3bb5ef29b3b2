// Helpers of the kill -9 suite: run the real `dmalog` binary, kill it, read
// what `dmalog stress --verify` printed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dmalog::testing {

// The dmalog binary of this build tree.
inline constexpr char kDmalogBinary[] = DMALOG_TEST_DATA_DIR "/../dmalog";

struct ProcessResult {
  bool exited = false;  // false: killed by a signal.
  int code = -1;        // Exit status, or the signal number when !exited.
  std::string out;
  std::string err;
};

// Starts `kDmalogBinary args...` with stdout and stderr going to
// `out_path` and `err_path` (created or truncated); -1 on failure.
pid_t StartDmalog(const std::vector<std::string>& args, const std::string& out_path,
                  const std::string& err_path);
// Waits for `pid` and reads the two files back.
ProcessResult WaitDmalog(pid_t pid, const std::string& out_path, const std::string& err_path);
// StartDmalog + WaitDmalog.
ProcessResult RunDmalog(const std::vector<std::string>& args, const std::string& dir);

// The number after `label` in `text` ("... lost 0, ..." -> 0); -1 if absent.
int64_t NumberAfter(const std::string& text, const std::string& label);

// A flag of the test binary: --name=N on its command line, else the
// environment variable `env`, else `fallback`.
uint64_t TestFlag(const std::string& name, const char* env, uint64_t fallback);

}  // namespace dmalog::testing

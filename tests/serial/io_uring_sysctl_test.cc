// kernel.io_uring_disabled=2, for real: the engine and the CLI fall back to
// the thread-pool backend with one warning line that names EPERM, the sysctl
// and the fix, and require_direct_io refuses to open instead.
//
// The sysctl is machine-wide, so this label runs alone (RUN_SERIAL) and the
// test restores the old value even when it fails. Root only; skipped with
// the reason otherwise (a failure instead when CI is set).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "dmalog/engine.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

constexpr char kSysctlPath[] = "/proc/sys/kernel/io_uring_disabled";
constexpr char kDmalog[] = DMALOG_TEST_DATA_DIR "/../dmalog";
constexpr size_t kOutputBytesMax = 1 << 20;

std::string ReadSysctl() {
  std::ifstream in(kSysctlPath);
  std::string value;
  in >> value;
  return value;
}

bool WriteSysctl(const std::string& value) {
  std::ofstream out(kSysctlPath);
  out << value << "\n";
  out.flush();
  return out.good() && ReadSysctl() == value;
}

// Sets the sysctl for its lifetime, then puts the old value back.
class SysctlGuard {
 public:
  explicit SysctlGuard(const std::string& value) : old_(ReadSysctl()) { ok_ = WriteSysctl(value); }
  ~SysctlGuard() {
    if (!WriteSysctl(old_)) ADD_FAILURE() << "could not restore " << kSysctlPath << "=" << old_;
  }
  bool ok() const { return ok_; }
  const std::string& old_value() const { return old_; }

 private:
  std::string old_;
  bool ok_ = false;
};

struct CliRun {
  int code = -1;
  std::string out;  // stdout and stderr, in order.
};

// Runs `dmalog args` through the shell with stderr folded into stdout.
CliRun RunDmalog(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(kDmalog) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (r.out.size() < kOutputBytesMax && fgets(buf, sizeof(buf), p) != nullptr) r.out += buf;
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t CountLines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class IoUringSysctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const bool ci = std::getenv("CI") != nullptr;
    std::string why;
    if (geteuid() != 0) why = "needs root to set kernel.io_uring_disabled";
    if (why.empty() && !std::filesystem::exists(kSysctlPath)) {
      why = std::string("this kernel has no ") + kSysctlPath + " (added in Linux 6.6)";
    }
    if (why.empty() && !std::filesystem::exists(kDmalog)) why = "build the dmalog_cli target first";
    if (!why.empty() && ci) FAIL() << why;
    if (!why.empty()) GTEST_SKIP() << why;
  }
  TestDir dir_;
};

TEST_F(IoUringSysctlTest, CliFallsBackWithOneWarningLine) {
  const std::string db = "--db=" + dir_.File("db");
  {
    SysctlGuard disabled("2");
    ASSERT_TRUE(disabled.ok()) << "cannot write " << kSysctlPath;
    const CliRun put = RunDmalog(db + " --create_if_missing put key value");
    EXPECT_EQ(put.code, 0) << put.out;
    EXPECT_EQ(CountLines(put.out, "\n"), 1u) << "one warning line, nothing else:\n" << put.out;
    EXPECT_NE(put.out.find("EPERM"), std::string::npos) << put.out;
    EXPECT_NE(put.out.find("kernel.io_uring_disabled=2"), std::string::npos) << put.out;
    EXPECT_NE(put.out.find("sysctl kernel.io_uring_disabled=0"), std::string::npos) << put.out;
    const CliRun get = RunDmalog(db + " get key");
    EXPECT_EQ(get.code, 0) << get.out;
    EXPECT_NE(get.out.find("value\n"), std::string::npos) << get.out;
    const CliRun stats = RunDmalog(db + " stats");
    EXPECT_EQ(stats.code, 0) << stats.out;
    EXPECT_NE(stats.out.find("sync"), std::string::npos) << stats.out;
  }
  // Back to io_uring once the sysctl allows it: no warning at all.
  const CliRun get = RunDmalog(db + " get key");
  EXPECT_EQ(get.code, 0) << get.out;
  EXPECT_EQ(get.out, "value\n");
}

TEST_F(IoUringSysctlTest, EngineReportsTheFallbackAndRequireDirectIoRefuses) {
  SysctlGuard disabled("2");
  ASSERT_TRUE(disabled.ok()) << "cannot write " << kSysctlPath;
  Options options;
  options.db_path = dir_.File("db");
  options.quiet = true;
  {
    Result<std::unique_ptr<Engine>> db = Engine::Open(options);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    const EngineStats stats = (*db)->Stats();
    EXPECT_NE(stats.io_fallback.find("kernel.io_uring_disabled=2"), std::string::npos)
        << stats.io_fallback;
    ASSERT_OK((*db)->Put(WriteOptions{}, "k", "v"));
    Result<std::string> v = (*db)->Get("k");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, "v");
    ASSERT_OK((*db)->Close());
  }
  options.require_direct_io = true;
  Result<std::unique_ptr<Engine>> refused = Engine::Open(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().ToString().find("io_uring_disabled"), std::string::npos)
      << refused.status().ToString();
}

}  // namespace
}  // namespace dmalog::testing

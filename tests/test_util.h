// Helpers shared by the tests. Test data lives in the build tree
// (DMALOG_TEST_DATA_DIR), on the real filesystem, never in a tmpfs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace dmalog::testing {

// A fresh, empty directory unique to the running test, removed by the
// destructor unless DMALOG_KEEP_TEST_DATA is set in the environment.
class TestDir {
 public:
  TestDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "anon";
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::path(DMALOG_TEST_DATA_DIR) / (name + "." + std::to_string(getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDir() {
    if (getenv("DMALOG_KEEP_TEST_DATA") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace dmalog::testing

#define ASSERT_OK(expr)                      \
  do {                                       \
    const ::dmalog::Status _st = (expr);     \
    ASSERT_TRUE(_st.ok()) << _st.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                      \
  do {                                       \
    const ::dmalog::Status _st = (expr);     \
    EXPECT_TRUE(_st.ok()) << _st.ToString(); \
  } while (0)

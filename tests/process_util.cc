#include "tests/process_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace dmalog::testing {
namespace {

constexpr uint64_t kWaitPollMs = 5;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

pid_t StartProgram(const std::string& program, const std::vector<std::string>& args,
                   const std::string& out_path, const std::string& err_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<std::string> all = {program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

ProcessResult WaitProgram(pid_t pid, const std::string& out_path, const std::string& err_path,
                          uint64_t timeout_ms) {
  ProcessResult r;
  r.started = true;
  int status = 0;
  const uint64_t polls_max = timeout_ms / kWaitPollMs + 1;
  pid_t done = 0;
  for (uint64_t poll = 0; poll < polls_max && done == 0; ++poll) {
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(kWaitPollMs));
  }
  if (done == 0) {
    r.timed_out = true;
    kill(pid, SIGKILL);
    done = waitpid(pid, &status, 0);
  }
  if (done != pid) return r;
  r.exited = WIFEXITED(status);
  r.code = r.exited ? WEXITSTATUS(status) : WTERMSIG(status);
  r.out = ReadAll(out_path);
  r.err = ReadAll(err_path);
  return r;
}

ProcessResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                         const std::string& dir, uint64_t timeout_ms) {
  const std::string out = dir + "/command.out", err = dir + "/command.err";
  const pid_t pid = StartProgram(program, args, out, err);
  if (pid < 0) return {};
  return WaitProgram(pid, out, err, timeout_ms);
}

ProcessResult RunDmalog(const std::vector<std::string>& args, const std::string& dir,
                        uint64_t timeout_ms) {
  return RunProgram(kDmalogBinary, args, dir, timeout_ms);
}

int64_t NumberAfter(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + label.size(), nullptr, 10);
}

uint64_t TestFlag(const std::string& name, const char* env, uint64_t fallback) {
  const std::string prefix = "--" + name + "=";
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    if (arg.rfind(prefix, 0) == 0) return std::strtoull(arg.c_str() + prefix.size(), nullptr, 10);
  }
  const char* value = std::getenv(env);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

}  // namespace dmalog::testing

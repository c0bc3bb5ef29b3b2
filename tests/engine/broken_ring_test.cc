// An executor whose ring breaks for good (io_uring_enter fails with an error
// that is not transient) stops on its own and destroys its suspended tasks.
// A task of its that awaits a call spanning shards must then be answered
// into nothing (the late callback finds the task gone), and the engine must
// still close, with the other shard's data intact.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "engine/engine_hooks.h"
#include "io/backend.h"
#include "scheduler/executor.h"
#include "tests/engine/engine_fault_util.h"
#include "tests/test_util.h"

namespace dmalog::testing {
namespace {

using namespace std::chrono_literals;

// Forwards to the real backend until `broken` is set; then every Poll fails
// as a broken ring's io_uring_enter would.
class BreakableBackend final : public io::Backend {
 public:
  BreakableBackend(std::unique_ptr<io::Backend> inner, const std::atomic<bool>* broken,
                   std::atomic<bool>* failed)
      : inner_(std::move(inner)), broken_(broken), failed_(failed) {}
  io::BackendKind kind() const noexcept override { return inner_->kind(); }
  std::string Describe() const override { return "breakable(" + inner_->Describe() + ")"; }
  uint32_t capacity() const noexcept override { return inner_->capacity(); }
  uint32_t in_flight() const noexcept override { return inner_->in_flight(); }
  void Submit(io::IoRequest* req) override { inner_->Submit(req); }
  Status Poll(int64_t timeout_ns) override {
    if (broken_->load()) {
      failed_->store(true);
      return Status::IOError("io_uring_enter: simulated broken ring", EBADF);
    }
    return inner_->Poll(timeout_ns);
  }
  void SubmitNow() override { inner_->SubmitNow(); }
  io::IoRequest* PopCompleted() override { return inner_->PopCompleted(); }
  void Wake() override { inner_->Wake(); }
  Status RegisterBuffers(std::span<const iovec> buffers) override {
    return inner_->RegisterBuffers(buffers);
  }

 private:
  std::unique_ptr<io::Backend> inner_;
  const std::atomic<bool>* broken_;
  std::atomic<bool>* failed_;  // Set once a Poll has failed.
};

struct Loop {
  std::atomic<uint64_t> answered{0};
  std::atomic<bool> finished{false};
};

// Until a call fails: an unsynced put to shard 1, then CoSync, whose part on
// shard 1 waits for that put's flush while the part on shard 0 (nothing to
// flush) answers at once. So the task mostly awaits shard 1 while its own
// executor sleeps in its backend's Poll.
Task<void> PutAndSyncForever(Engine* db, Loop* loop, std::string key_on_1) {
  const WriteOptions unsynced{.sync = false};  // Named: see engine.h on GCC 12.
  for (uint64_t i = 0;; ++i) {
    if (!(co_await db->CoPut(unsynced, key_on_1, std::to_string(i))).ok()) break;
    if (!(co_await db->CoSync()).ok()) break;
    loop->answered.fetch_add(1);
  }
  loop->finished.store(true);
}

// The first of prefix0 .. prefix99 on `shard`, or "" (1 chance in 2^100).
std::string KeyOnShard(const Engine& db, uint32_t shard, const std::string& prefix) {
  for (int i = 0; i < 100; ++i) {
    std::string key = prefix + std::to_string(i);
    if (db.ShardOf(key) == shard) return key;
  }
  return "";
}

TEST(BrokenRingTest, ExecutorThatStopsOnItsOwnLeavesAwaitersAndCloseSafe) {
  const TestDir test_dir;
  const std::string dir = test_dir.File("db");
  std::atomic<bool> broken{false};
  std::atomic<bool> failed{false};
  engine::EngineHooks hooks;
  hooks.wrap_backend =
      [&broken, &failed](std::unique_ptr<io::Backend> inner) -> std::unique_ptr<io::Backend> {
    if (sched::Executor::Current()->shard() != 0) return inner;
    return std::make_unique<BreakableBackend>(std::move(inner), &broken, &failed);
  };
  Options options = SmallDbOptions(dir, 2);
  // Sleep (and so call Poll) as soon as idle: with an idle poll, an
  // executor whose gaps are shorter than the window might never poll.
  options.idle_poll_us = 0;
  Result<std::unique_ptr<Engine>> opened = engine::OpenEngine(options, hooks);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Engine> db = std::move(*opened);
  for (int i = 0; i < 100; ++i) ASSERT_OK(db->Put({}, "key" + std::to_string(i), "value"));
  WaitForSpareSegments(*db);

  const std::string key_on_1 = KeyOnShard(*db, 1, "key");
  const std::string loop_key = KeyOnShard(*db, 1, "loop");
  ASSERT_FALSE(key_on_1.empty() || loop_key.empty());
  Loop loop;
  ASSERT_OK(db->Spawn(0, PutAndSyncForever(db.get(), &loop, loop_key)));
  for (int i = 0; i < 5000 && loop.answered.load() < 100; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_GE(loop.answered.load(), 100u);
  broken.store(true);
  // Executor 0 meets the broken ring at its next poll and stops, destroying
  // the task (normally while it awaits shard 1's part).
  for (int i = 0; i < 10000 && !failed.load(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(failed.load()) << "executor 0 never polled its backend";
  std::this_thread::sleep_for(20ms);  // Its loop ends; at most one slice ran after the poll.
  const uint64_t answered = loop.answered.load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(loop.answered.load(), answered) << "the task still runs after its executor stopped";

  // Shard 1 still answers; Close ends (it cannot reach shard 0) and names why.
  Result<std::string> v = db->Get(key_on_1);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "value");
  std::future<Status> closed = std::async(std::launch::async, [&db] { return db->Close(); });
  ASSERT_EQ(closed.wait_for(60s), std::future_status::ready) << "Close hangs";
  const Status s = closed.get();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("shard 0 stopped before Close"), std::string::npos) << s.ToString();
  db.reset();

  // Everything acknowledged is there after a reopen.
  std::unique_ptr<Engine> again = OpenOrFail(SmallDbOptions(dir, 2));
  ASSERT_NE(again, nullptr);
  for (int i = 0; i < 100; ++i) {
    Result<std::string> r = again->Get("key" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << "key" << i << ": " << r.status().ToString();
  }
  // The loop's last put that a completed CoSync covered.
  Result<std::string> last = again->Get(loop_key);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_GE(std::stoull(*last) + 1, answered);
  ASSERT_OK(again->Close());
}

}  // namespace
}  // namespace dmalog::testing

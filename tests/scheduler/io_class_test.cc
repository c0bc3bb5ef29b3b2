// I/O classes: share-based dispatch under a saturated device limit, class
// in-flight limits, completion stats; and BufferPool back-pressure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "io/buffer_pool.h"
#include "io/reactor.h"
#include "scheduler/executor_group.h"
#include "tests/scheduler/sched_test_util.h"

namespace dmalog::sched {
namespace {

using namespace std::chrono_literals;
using testing::AllowedCpus;
using testing::SmallGroup;
using testing::StartOrDie;

constexpr uint32_t kWriteBytes = 64u << 10;
// The device limit binds in the shares test (a class limit below it would
// reserve the remaining slots for the other class whatever the shares).
constexpr uint32_t kDeviceInFlightMax = 4;
constexpr uint32_t kClassInFlightMax = 4;
constexpr uint64_t kClassBytesMax = 4 * kWriteBytes;
constexpr int kWritersPerClass = 8;

struct Writer {
  int fd = -1;
  uint64_t offset_bytes = 0;
  std::vector<uint8_t> buf = std::vector<uint8_t>(kWriteBytes, 0xab);
  std::atomic<bool>* stop = nullptr;
  std::atomic<int>* errors = nullptr;
  const char* path = "";
};

Task<void> WriteLoop(Writer* w) {
  while (!w->stop->load(std::memory_order_relaxed)) {
    io::IoRequest req;
    req.op = io::IoOp::kWrite;
    req.fd = w->fd;
    req.buf = w->buf.data();
    req.length_bytes = kWriteBytes;
    req.offset_bytes = w->offset_bytes;
    req.path = w->path;
    Status status = co_await io::IoAwaitable(req);
    if (!status.ok()) {
      ++*w->errors;
      co_return;
    }
  }
}

TEST(IoClassTest, DispatchedBytesFollowSharesAndLimitsHold) {
  dmalog::testing::TestDir dir;
  const std::string path = dir.File("io_class.dat");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const std::vector<int> cpus = AllowedCpus();
  GroupOptions options = SmallGroup(1, {cpus.front()});
  options.executor.device_in_flight_max = kDeviceInFlightMax;
  auto group = StartOrDie(options);
  ASSERT_NE(group, nullptr);
  QueueOptions high;
  high.name = "foreground";
  high.shares = 800;
  high.io_in_flight_max = kClassInFlightMax;
  high.io_in_flight_bytes_max = kClassBytesMax;
  QueueOptions low = high;
  low.name = "compaction";
  low.shares = 100;
  Result<QueueId> high_id = group->CreateQueue(0, high);
  Result<QueueId> low_id = group->CreateQueue(0, low);
  ASSERT_TRUE(high_id.ok() && low_id.ok());

  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<Writer> writers(2 * kWritersPerClass);
  for (size_t i = 0; i < writers.size(); ++i) {
    writers[i].fd = fd;
    writers[i].offset_bytes = i * kWriteBytes;
    writers[i].stop = &stop;
    writers[i].errors = &errors;
    writers[i].path = path.c_str();
  }
  ASSERT_OK(group
                ->submit_to(0,
                            [&] {
                              for (size_t i = 0; i < writers.size(); ++i) {
                                const QueueId queue = i < kWritersPerClass ? *high_id : *low_id;
                                Executor::Current()->Spawn(queue, WriteLoop(&writers[i]));
                              }
                            })
                .get());
  std::this_thread::sleep_for(100ms);
  Result<ExecutorStats> before = group->Stats(0);
  std::this_thread::sleep_for(1000ms);
  Result<ExecutorStats> after = group->Stats(0);
  stop = true;
  ASSERT_OK(group->submit_to(0, []() -> Task<void> { co_await sleep_for(20ms); }).get());
  Result<ExecutorStats> end = group->Stats(0);
  group->Stop();
  ::close(fd);
  ASSERT_TRUE(before.ok() && after.ok() && end.ok());
  EXPECT_EQ(errors.load(), 0);

  const IoClassStats& hi0 = before->io_classes[*high_id];
  const IoClassStats& lo0 = before->io_classes[*low_id];
  const IoClassStats& hi1 = after->io_classes[*high_id];
  const IoClassStats& lo1 = after->io_classes[*low_id];
  const double hi_bytes = static_cast<double>(hi1.bytes_submitted - hi0.bytes_submitted);
  const double lo_bytes = static_cast<double>(lo1.bytes_submitted - lo0.bytes_submitted);
  ASSERT_GT(lo_bytes, 0.0);
  const double ratio = hi_bytes / lo_bytes;
  std::printf("dispatched high=%.1f MiB low=%.1f MiB ratio=%.2f (want 8); p99 high=%lu us\n",
              hi_bytes / (1 << 20), lo_bytes / (1 << 20), ratio, hi1.latency.PercentileUs(99));
  EXPECT_GE(ratio, 8.0 * 0.75);
  EXPECT_LE(ratio, 8.0 * 1.25);
  // Both classes were backlogged: requests waited in the class FIFOs.
  for (const IoClassStats* s : {&hi1, &lo1}) {
    EXPECT_LE(s->in_flight_peak, kClassInFlightMax);
    EXPECT_LE(s->in_flight_bytes_peak, kClassBytesMax);
    EXPECT_EQ(s->errors, 0u);
  }
  EXPECT_LE(hi1.in_flight_peak + lo1.in_flight_peak, 2 * kClassInFlightMax);
  // Everything submitted completed, with a latency sample each.
  for (QueueId id : {*high_id, *low_id}) {
    const IoClassStats& s = end->io_classes[id];
    EXPECT_EQ(s.submitted, s.completed);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(s.latency.count(), s.completed);
    EXPECT_EQ(s.bytes_completed, s.bytes_submitted);
  }
}

TEST(IoClassTest, ClassLimitsBindBelowTheDeviceLimit) {
  dmalog::testing::TestDir dir;
  const std::string path = dir.File("limits.dat");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  GroupOptions options = SmallGroup(1);
  options.executor.device_in_flight_max = 16;
  auto group = StartOrDie(options);
  ASSERT_NE(group, nullptr);
  QueueOptions by_count;
  by_count.io_in_flight_max = 2;
  QueueOptions by_bytes;
  by_bytes.io_in_flight_bytes_max = 3 * kWriteBytes;
  Result<QueueId> count_id = group->CreateQueue(0, by_count);
  Result<QueueId> bytes_id = group->CreateQueue(0, by_bytes);
  ASSERT_TRUE(count_id.ok() && bytes_id.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<Writer> writers(2 * kWritersPerClass);
  for (size_t i = 0; i < writers.size(); ++i) {
    writers[i].fd = fd;
    writers[i].offset_bytes = i * kWriteBytes;
    writers[i].stop = &stop;
    writers[i].errors = &errors;
    writers[i].path = path.c_str();
  }
  ASSERT_OK(group
                ->submit_to(0,
                            [&] {
                              for (size_t i = 0; i < writers.size(); ++i) {
                                const QueueId queue = i < kWritersPerClass ? *count_id : *bytes_id;
                                Executor::Current()->Spawn(queue, WriteLoop(&writers[i]));
                              }
                            })
                .get());
  std::this_thread::sleep_for(200ms);
  stop = true;
  ASSERT_OK(group->submit_to(0, []() -> Task<void> { co_await sleep_for(20ms); }).get());
  Result<ExecutorStats> stats = group->Stats(0);
  group->Stop();
  ::close(fd);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(errors.load(), 0);
  const IoClassStats& count_stats = stats->io_classes[*count_id];
  const IoClassStats& bytes_stats = stats->io_classes[*bytes_id];
  EXPECT_GT(count_stats.completed, 100u);
  EXPECT_EQ(count_stats.in_flight_peak, 2u);  // Reached, never exceeded.
  EXPECT_EQ(bytes_stats.in_flight_bytes_peak, 3 * kWriteBytes);
  EXPECT_EQ(bytes_stats.in_flight_peak, 3u);
}

Task<void> HoldThenRelease(std::vector<io::Buffer>* held, std::atomic<int>* step) {
  io::BufferPool& pool = io::Reactor::Current()->buffer_pool();
  while (auto buffer = pool.TryAcquire()) held->push_back(*buffer);
  ++*step;  // 1: everything is lent.
  co_await sleep_for(20ms);
  EXPECT_EQ(step->load(), 1) << "the waiter ran before a buffer was released";
  pool.Release(held->back());
  held->pop_back();
}

Task<void> WaitForBuffer(std::atomic<int>* step, uint64_t* waited_ns) {
  io::BufferPool& pool = io::Reactor::Current()->buffer_pool();
  const uint64_t start_ns = Executor::NowNs();
  io::Buffer buffer = co_await pool.Acquire();
  *waited_ns = Executor::NowNs() - start_ns;
  EXPECT_NE(buffer.data, nullptr);
  ++*step;  // 2: the waiter got the released buffer.
  pool.Release(buffer);
}

TEST(IoClassTest, BufferPoolWaiterResumesWhenABufferIsReleased) {
  auto group = StartOrDie(SmallGroup(1));
  ASSERT_NE(group, nullptr);
  std::vector<io::Buffer> held;
  std::atomic<int> step{0};
  uint64_t waited_ns = 0;
  ASSERT_OK(
      group
          ->submit_to(0,
                      [&] {
                        Executor::Current()->Spawn(kDefaultQueue, HoldThenRelease(&held, &step));
                        Executor::Current()->Spawn(kDefaultQueue, WaitForBuffer(&step, &waited_ns));
                      })
          .get());
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (step.load() < 2 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(step.load(), 2);
  EXPECT_GE(waited_ns, 20'000'000u);
  // Give the rest back on the executor's thread.
  ASSERT_OK(group
                ->submit_to(0,
                            [&] {
                              for (const io::Buffer& buffer : held) {
                                io::Reactor::Current()->buffer_pool().Release(buffer);
                              }
                              held.clear();
                            })
                .get());
  Result<ExecutorStats> stats = group->Stats(0);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->buffer_waits, 1u);
  EXPECT_EQ(stats->buffers_free, SmallGroup(1).executor.buffer_count);
}

}  // namespace
}  // namespace dmalog::sched

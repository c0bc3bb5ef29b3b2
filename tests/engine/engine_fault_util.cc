#include "tests/engine/engine_fault_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "engine/record.h"
#include "engine/segment.h"
#include "scheduler/executor.h"

namespace dmalog::testing {
namespace {

// Runs `fn` on the executor this task is spawned on, then signals `done`.
Task<void> RunThenSignal(std::function<void()> fn, std::shared_ptr<std::promise<void>> done) {
  fn();
  done->set_value();
  co_return;
}

constexpr uint64_t kSegmentFileBytesMax = 1ull << 32;  // Larger files are not ours.

}  // namespace

Options SmallDbOptions(const std::string& path, uint32_t shards) {
  Options o;
  o.db_path = path;
  o.shard_count = shards;
  o.segment_size_bytes = kSmallSegmentBytes;
  o.quiet = true;
  return o;
}

std::unique_ptr<Engine> OpenOrFail(const Options& options) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(options);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

Status RunOnShard(Engine& db, uint32_t shard, std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  DMALOG_RETURN_IF_ERROR(db.Spawn(shard, RunThenSignal(std::move(fn), done)));
  finished.wait();
  return Status::OK();
}

engine::EngineHooks FaultHarness::Hooks() {
  engine::EngineHooks hooks;
  hooks.wrap_backend = [this](std::unique_ptr<io::Backend> inner) -> std::unique_ptr<io::Backend> {
    const uint32_t shard = sched::Executor::Current()->shard();
    auto fault = std::make_unique<io::FaultBackend>(
        std::move(inner), io::FaultBackend::Options{seed_ * 1000003 + shard});
    std::lock_guard<std::mutex> lock(mu_);
    if (backends_.size() <= shard) backends_.resize(shard + 1, nullptr);
    backends_[shard] = fault.get();
    return fault;
  };
  return hooks;
}

io::FaultBackend* FaultHarness::backend(uint32_t shard) {
  std::lock_guard<std::mutex> lock(mu_);
  return shard < backends_.size() ? backends_[shard] : nullptr;
}

constexpr uint32_t kSpareWaitStepsMax = 2000;  // 1 ms each.

void WaitForSpareSegments(Engine& db) {
  for (uint32_t step = 0; step < kSpareWaitStepsMax; ++step) {
    const EngineStats stats = db.Stats();
    const bool ready = std::all_of(stats.shards.begin(), stats.shards.end(),
                                   [](const ShardStats& s) { return s.segments >= 2; });
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ADD_FAILURE() << "the spare segments were never prepared";
}

Status FaultHarness::InjectAt(Engine& db, uint32_t shard, uint64_t nth_op, io::FaultSpec spec) {
  io::FaultBackend* fb = backend(shard);
  if (fb == nullptr) return Status::InvalidArgument("no FaultBackend for shard");
  return RunOnShard(db, shard, [fb, nth_op, spec] { fb->InjectAt(nth_op, spec); });
}

Result<io::CrashReport> FaultHarness::Crash(Engine& db, uint32_t shard,
                                            const io::CrashOptions& options) {
  io::FaultBackend* fb = backend(shard);
  if (fb == nullptr) return Status::InvalidArgument("no FaultBackend for shard");
  Result<io::CrashReport> report = Status::Aborted("the crash did not run");
  DMALOG_RETURN_IF_ERROR(
      RunOnShard(db, shard, [&report, fb, options] { report = fb->SimulateCrash(options); }));
  return report;
}

std::string SegmentPath(const std::string& db_path, uint32_t shard, uint64_t id) {
  char name[64];
  std::snprintf(name, sizeof(name), "/shard-%03u/", shard);
  return db_path + name + engine::SegmentFileName(id);
}

Result<std::vector<SegmentRecord>> ReadSegmentRecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  assert(bytes.size() < kSegmentFileBytesMax);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  Result<engine::SegmentHeader> header =
      engine::DecodeSegmentHeader(std::span<const uint8_t>(data, bytes.size()), path);
  if (!header.ok()) return header.status();
  const uint64_t align = header->write_alignment_bytes;
  std::vector<SegmentRecord> out;
  uint64_t at = align;
  // Each step advances by at least one record header.
  for (uint64_t step = 0; step < bytes.size() / format::kRecordHeaderBytes && at < bytes.size();
       ++step) {
    const uint64_t rest = align - at % align;
    if (rest < format::kRecordHeaderBytes) at += rest;  // Zeros that no record starts in.
    if (at >= bytes.size()) break;
    engine::DecodeResult d = engine::DecodeRecord(
        std::span<const uint8_t>(data + at, bytes.size() - at), header->segment_id);
    if (d.outcome != engine::DecodeOutcome::kRecord) break;
    out.push_back(SegmentRecord{at, d.record.encoded_bytes, d.record.sequence,
                                static_cast<uint8_t>(d.record.type), std::string(d.record.key),
                                d.record.flags});
    at += d.record.encoded_bytes;
  }
  return out;
}

Result<std::vector<SegmentRecord>> ReadDataRecords(const std::string& path) {
  Result<std::vector<SegmentRecord>> all = ReadSegmentRecords(path);
  if (!all.ok()) return all.status();
  std::vector<SegmentRecord> out;
  for (SegmentRecord& r : *all) {
    if (r.type >= format::kPutType && r.type <= format::kBatchType) out.push_back(std::move(r));
  }
  return out;
}

Status FlipByte(const std::string& path, uint64_t offset_bytes) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path + ": " + std::strerror(errno), errno);
  uint8_t byte = 0;
  Status s;
  if (pread(fd, &byte, 1, static_cast<off_t>(offset_bytes)) != 1) {
    s = Status::IOError("pread " + path + ": " + std::strerror(errno), errno);
  } else {
    byte ^= 1;
    if (pwrite(fd, &byte, 1, static_cast<off_t>(offset_bytes)) != 1 || fsync(fd) != 0) {
      s = Status::IOError("pwrite " + path + ": " + std::strerror(errno), errno);
    }
  }
  close(fd);
  return s;
}

Status ZeroRange(const std::string& path, uint64_t offset_bytes, uint32_t length_bytes) {
  return WriteAt(path, std::vector<uint8_t>(length_bytes, 0), offset_bytes);
}

Status WriteAt(const std::string& path, std::span<const uint8_t> bytes, uint64_t offset_bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path + ": " + std::strerror(errno), errno);
  Status s;
  if (pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset_bytes)) !=
          static_cast<ssize_t>(bytes.size()) ||
      fsync(fd) != 0) {
    s = Status::IOError("pwrite " + path + ": " + std::strerror(errno), errno);
  }
  close(fd);
  return s;
}

Result<std::vector<uint8_t>> ReadAt(const std::string& path, uint64_t offset_bytes,
                                    size_t length_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path + ": " + std::strerror(errno), errno);
  std::vector<uint8_t> bytes(length_bytes);
  const ssize_t n = pread(fd, bytes.data(), length_bytes, static_cast<off_t>(offset_bytes));
  close(fd);
  if (n != static_cast<ssize_t>(length_bytes)) return Status::IOError("short pread of " + path);
  return bytes;
}

Result<engine::SegmentHeader> ReadSegmentHeader(const std::string& path) {
  Result<std::vector<uint8_t>> bytes = ReadAt(path, 0, format::kSegmentHeaderEncodedBytes);
  if (!bytes.ok()) return bytes.status();
  return engine::DecodeSegmentHeader(*bytes, path);
}

Status WriteSegmentHeader(const std::string& path, const engine::SegmentHeader& header) {
  std::vector<uint8_t> bytes(format::kSegmentHeaderEncodedBytes);
  engine::EncodeSegmentHeader(bytes, header);
  return WriteAt(path, bytes, 0);
}

}  // namespace dmalog::testing

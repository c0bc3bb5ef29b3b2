// FaultBackend: simulated crashes keep exactly what fdatasync covered, tear
// and fill unsynced sectors, misdirect writes, and are seeded.
#include <linux/falloc.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/io/fault_backend_util.h"

namespace dmalog::io {
namespace {

using namespace fault_test;  // NOLINT: the shared fixture and helpers.

TEST_P(FaultBackendTest, CrashKeepsExactlyWhatFdatasyncCovered) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("crash");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(4 * kBlockBytes, 1);
  AlignedBuf b = Pattern(4 * kBlockBytes, 2);
  ASSERT_OK(Write(*fb, fd, path, a.get(), 4 * kBlockBytes, 0));
  ASSERT_OK(Sync(*fb, fd, path));
  // B overlaps A's second half and extends the file; never synced.
  ASSERT_OK(Write(*fb, fd, path, b.get(), 4 * kBlockBytes, 2 * kBlockBytes));
  EXPECT_EQ(ReadWholeFile(path).size(), 6 * kBlockBytes);
  EXPECT_EQ(fb->uncovered_records(), 1u);
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(path), PatternVec(4 * kBlockBytes, 1)) << report->ToString();
  EXPECT_EQ(report->Count(CrashEvent::Kind::kDropped), 1u) << report->ToString();
  EXPECT_EQ(report->Count(CrashEvent::Kind::kResized), 1u) << report->ToString();
}

TEST_P(FaultBackendTest, CrashAcrossInterleavedFiles) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string p1 = dir_.File("one"), p2 = dir_.File("two");
  const int fd1 = OpenFile(p1), fd2 = OpenFile(p2);
  constexpr uint64_t kLen = 2 * kBlockBytes;
  AlignedBuf a1 = Pattern(kLen, 11), b1 = Pattern(kLen, 12), c1 = Pattern(kLen, 13);
  AlignedBuf a2 = Pattern(kLen, 21), b2 = Pattern(kLen, 22), c2 = Pattern(kLen, 23);
  ASSERT_OK(Write(*fb, fd1, p1, a1.get(), kLen, 0));
  ASSERT_OK(Write(*fb, fd2, p2, a2.get(), kLen, 0));
  ASSERT_OK(Sync(*fb, fd1, p1));  // Covers a1 only.
  ASSERT_OK(Write(*fb, fd2, p2, b2.get(), kLen, kLen));
  ASSERT_OK(Write(*fb, fd1, p1, b1.get(), kLen, kBlockBytes));  // Overwrites half of a1.
  ASSERT_OK(Sync(*fb, fd2, p2));                                // Covers a2, b2.
  ASSERT_OK(Write(*fb, fd2, p2, c2.get(), kLen, kBlockBytes));  // Unsynced.
  // A linked write+fdatasync covers itself and b1 before it.
  ASSERT_OK(Write(*fb, fd1, p1, c1.get(), kLen, 3 * kBlockBytes, IoOp::kWriteFdatasync));
  ASSERT_OK(Write(*fb, fd1, p1, a2.get(), kLen, 0));  // Unsynced.

  std::vector<uint8_t> want1 = PatternVec(kLen, 11);
  Overlay(&want1, PatternVec(kLen, 12), kBlockBytes);
  Overlay(&want1, PatternVec(kLen, 13), 3 * kBlockBytes);
  std::vector<uint8_t> want2 = PatternVec(kLen, 21);
  Overlay(&want2, PatternVec(kLen, 22), kLen);
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(p1), want1) << report->ToString();
  EXPECT_EQ(ReadWholeFile(p2), want2) << report->ToString();
  EXPECT_EQ(report->Count(CrashEvent::Kind::kDropped), 2u) << report->ToString();
}

// A RWF_DSYNC write is durable when it completes, but syncs its own range only
// (vfs_fsync_range): an earlier plain write stays uncovered. A kSync fault on
// it lets the write land unsynced and fails the request.
TEST_P(FaultBackendTest, DsyncWriteCoversOnlyItself) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("dsync");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1), b = Pattern(kBlockBytes, 2), c = Pattern(kBlockBytes, 3);
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));  // Plain, unsynced.
  IoRequest dsync =
      testing::MakeRequest(IoOp::kWrite, fd, b.get(), kBlockBytes, 2 * kBlockBytes, path);
  dsync.rw_flags = RWF_DSYNC;
  ASSERT_OK(RunBlocking(*fb, &dsync));
  EXPECT_EQ(fb->uncovered_records(), 1u);  // a only.
  fb->InjectAt(1, FaultSpec::Eio(OpFilter::kSync));
  IoRequest failing =
      testing::MakeRequest(IoOp::kWrite, fd, c.get(), kBlockBytes, 3 * kBlockBytes, path);
  failing.rw_flags = RWF_DSYNC;
  const Status st = RunBlocking(*fb, &failing);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_EQ(failing.rw_flags, RWF_DSYNC);  // The caller's request is left as it was.
  EXPECT_EQ(ReadWholeFile(path).size(), 4 * kBlockBytes);  // The write half landed.
  EXPECT_EQ(fb->uncovered_records(), 2u);                  // a and c.
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::vector<uint8_t> want(2 * kBlockBytes, 0);
  Overlay(&want, PatternVec(kBlockBytes, 2), 2 * kBlockBytes);
  EXPECT_EQ(ReadWholeFile(path), want) << report->ToString();
  EXPECT_EQ(report->Count(CrashEvent::Kind::kDropped), 2u) << report->ToString();
}

TEST_P(FaultBackendTest, ConcurrentOverlappingWritesAreUndoneExactly) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("overlap");
  const int fd = OpenFile(path);
  constexpr uint64_t kLen = 4 * kBlockBytes;
  AlignedBuf base = Pattern(kLen, 1);
  ASSERT_OK(Write(*fb, fd, path, base.get(), kLen, 0, IoOp::kWriteFdatasync));
  constexpr int kWrites = 6;
  std::vector<AlignedBuf> bufs;
  std::vector<IoRequest> reqs;
  reqs.reserve(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    bufs.push_back(Pattern(kLen, 100 + i));
    reqs.push_back(testing::MakeRequest(IoOp::kWrite, fd, bufs.back().get(), kLen,
                                        static_cast<uint64_t>(i) * kBlockBytes, path));
  }
  for (IoRequest& req : reqs) fb->Submit(&req);
  int done = 0;
  for (int poll = 0; poll < 1000 && done < kWrites; ++poll) {
    ASSERT_OK(fb->Poll(-1));
    while (IoRequest* req = fb->PopCompleted()) {
      EXPECT_OK(req->status);
      ++done;
    }
  }
  ASSERT_EQ(done, kWrites);
  std::vector<uint8_t> want = PatternVec(kLen, 1);
  std::vector<uint8_t> after = want;
  for (int i = 0; i < kWrites; ++i) Overlay(&after, PatternVec(kLen, 100 + i), i * kBlockBytes);
  EXPECT_EQ(ReadWholeFile(path), after);  // Issued in submission order.
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(path), want) << report->ToString();
}

TEST_P(FaultBackendTest, TornUnsyncedWritesKeepAPrefixAndZeroTheRest) {
  std::unique_ptr<FaultBackend> fb = Open(7);
  const std::string path = dir_.File("tear");
  const int fd = OpenFile(path);
  constexpr uint64_t kLen = 2 * kBlockBytes;
  constexpr int kWrites = 8;
  AlignedBuf base = Pattern(kLen, 1);
  ASSERT_OK(Write(*fb, fd, path, base.get(), kLen, 0, IoOp::kWriteFdatasync));
  std::vector<AlignedBuf> bufs;
  for (int i = 0; i < kWrites; ++i) {
    bufs.push_back(Pattern(kLen, 10 + i));
    ASSERT_OK(Write(*fb, fd, path, bufs.back().get(), kLen, kLen * (1 + i)));
  }
  CrashOptions options;
  options.tear_unsynced_writes = true;
  options.fill = UnsyncedFill::kZeros;
  options.keep_unsynced_size = true;
  Result<CrashReport> report = fb->SimulateCrash(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::vector<uint8_t> image = ReadWholeFile(path);
  ASSERT_EQ(image.size(), kLen * (1 + kWrites)) << report->ToString();
  EXPECT_EQ(0, std::memcmp(image.data(), base.get(), kLen));  // Synced data intact.
  int writes_seen = 0;
  for (const CrashEvent& event : report->events) {
    if (event.kind == CrashEvent::Kind::kResized) continue;
    ASSERT_TRUE(event.kind == CrashEvent::Kind::kTorn || event.kind == CrashEvent::Kind::kDropped);
    const int i = static_cast<int>(event.offset_bytes / kLen) - 1;
    ASSERT_EQ(event.kept_bytes % kSector, 0u);
    const uint8_t* got = image.data() + event.offset_bytes;
    EXPECT_EQ(0, std::memcmp(got, bufs[i].get(), event.kept_bytes)) << report->ToString();
    for (uint64_t b = event.kept_bytes; b < kLen; ++b) ASSERT_EQ(got[b], 0) << b;
    ++writes_seen;
  }
  EXPECT_EQ(writes_seen, kWrites);
  EXPECT_GT(report->Count(CrashEvent::Kind::kTorn), 0u) << report->ToString();
}

TEST_P(FaultBackendTest, TornOutOfOrderKeepsAnySubsetOfSectors) {
  std::unique_ptr<FaultBackend> fb = Open(11);
  const std::string path = dir_.File("tear-any");
  const int fd = OpenFile(path);
  constexpr uint64_t kLen = 2 * kBlockBytes;
  constexpr int kWrites = 8;
  std::vector<AlignedBuf> bufs;
  for (int i = 0; i < kWrites; ++i) {
    bufs.push_back(Pattern(kLen, 10 + i));
    ASSERT_OK(Write(*fb, fd, path, bufs.back().get(), kLen, kLen * i));
  }
  CrashOptions options;
  options.tear_unsynced_writes = true;
  options.tear_out_of_order = true;
  options.fill = UnsyncedFill::kZeros;
  options.keep_unsynced_size = true;
  Result<CrashReport> report = fb->SimulateCrash(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::vector<uint8_t> image = ReadWholeFile(path);
  ASSERT_EQ(image.size(), kLen * kWrites) << report->ToString();
  // Every sector is whole: all new data or all zeros. Some write keeps a
  // new sector after a zero one (not a prefix).
  bool any_hole_before_new = false;
  for (int i = 0; i < kWrites; ++i) {
    bool seen_zero = false;
    uint64_t kept = 0;
    for (uint64_t at = 0; at < kLen; at += kSector) {
      const uint8_t* got = image.data() + kLen * i + at;
      const bool is_new = std::memcmp(got, bufs[i].get() + at, kSector) == 0;
      const bool is_zero = std::all_of(got, got + kSector, [](uint8_t b) { return b == 0; });
      ASSERT_TRUE(is_new || is_zero) << "write " << i << " sector " << at / kSector;
      if (is_new && seen_zero) any_hole_before_new = true;
      seen_zero = seen_zero || !is_new;
      kept += is_new ? kSector : 0;
    }
    for (const CrashEvent& event : report->events) {
      if (event.kind != CrashEvent::Kind::kTorn || event.offset_bytes != kLen * i) continue;
      EXPECT_TRUE(event.out_of_order);
      EXPECT_EQ(event.kept_bytes, kept) << report->ToString();
    }
  }
  EXPECT_TRUE(any_hole_before_new) << report->ToString();
}

// A file that grows: an out-of-order tear cuts the file after its last kept
// sector (not after kept_bytes), and the sectors it did not keep hold the
// fill, not a hole.
TEST_P(FaultBackendTest, TornOutOfOrderSizesTheFileToTheLastKeptSector) {
  std::unique_ptr<FaultBackend> fb = Open(13);
  const std::string path = dir_.File("tear-grow");
  const int fd = OpenFile(path);
  constexpr uint64_t kLen = 4 * kBlockBytes;
  AlignedBuf data = Pattern(kLen, 21);
  ASSERT_OK(Write(*fb, fd, path, data.get(), kLen, 0));
  CrashOptions options;
  options.tear_unsynced_writes = true;
  options.tear_out_of_order = true;
  options.fill = UnsyncedFill::kGarbage;
  Result<CrashReport> report = fb->SimulateCrash(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::vector<uint8_t> image = ReadWholeFile(path);
  ASSERT_EQ(image.size() % kSector, 0u) << report->ToString();
  ASSERT_GT(image.size(), 0u) << report->ToString();
  // The last sector of the file is kept new data; every other sector is
  // either new data or garbage, never a hole of zeros.
  for (uint64_t at = 0; at < image.size(); at += kSector) {
    const bool is_new = std::memcmp(image.data() + at, data.get() + at, kSector) == 0;
    const bool is_zero = std::all_of(image.data() + at, image.data() + at + kSector,
                                     [](uint8_t b) { return b == 0; });
    EXPECT_FALSE(is_zero) << "sector " << at / kSector << ": " << report->ToString();
    if (at + kSector == image.size()) {
      EXPECT_TRUE(is_new) << report->ToString();
    }
  }
  for (const CrashEvent& event : report->events) {
    if (event.kind == CrashEvent::Kind::kResized) {
      EXPECT_EQ(event.target_offset_bytes, image.size()) << report->ToString();
    }
  }
}

// One scenario with every random crash option; returns the report with the
// directory stripped from the paths, and the files' contents.
struct Outcome {
  CrashReport report;
  std::vector<std::vector<uint8_t>> images;
};

TEST_P(FaultBackendTest, SameSeedGivesTheSameCrash) {
  auto run = [this](const std::string& subdir, uint64_t seed) {
    std::filesystem::create_directories(dir_.path() / subdir);
    std::unique_ptr<FaultBackend> fb = Open(seed);
    fb->SetFailProbability(0.2, FaultSpec::Eio(OpFilter::kWrite));
    std::vector<std::string> paths;
    std::vector<int> fds;
    for (int f = 0; f < 3; ++f) {
      paths.push_back((dir_.path() / subdir / ("f" + std::to_string(f))).string());
      fds.push_back(OpenFile(paths.back()));
    }
    for (int i = 0; i < 40; ++i) {
      const int f = i % 3;
      AlignedBuf buf = Pattern(kBlockBytes, i);
      Write(*fb, fds[f], paths[f], buf.get(), kBlockBytes, (i / 3) * kBlockBytes).IgnoreError();
      if (i % 7 == 6) EXPECT_OK(Sync(*fb, fds[f], paths[f]));
    }
    CrashOptions options;
    options.tear_unsynced_writes = true;
    options.fill = UnsyncedFill::kGarbage;
    options.misdirect_probability = 0.3;
    options.synced_bit_flips = 3;
    Result<CrashReport> report = fb->SimulateCrash(options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    Outcome out;
    if (!report.ok()) return out;
    out.report = *report;
    for (CrashEvent& event : out.report.events) {
      event.path = std::filesystem::path(event.path).filename().string();
    }
    for (const std::string& path : paths) out.images.push_back(ReadWholeFile(path));
    EXPECT_GT(fb->faults_fired(FaultKind::kEIO), 0u);
    return out;
  };
  const Outcome a = run("a", 42);
  const Outcome b = run("b", 42);
  EXPECT_EQ(a.report, b.report) << a.report.ToString() << "---\n" << b.report.ToString();
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.report.Count(CrashEvent::Kind::kBitFlip), 3u) << a.report.ToString();
  EXPECT_GT(a.report.Count(CrashEvent::Kind::kMisdirected), 0u) << a.report.ToString();
  const Outcome c = run("c", 43);
  EXPECT_NE(a.report, c.report) << "a different seed should give a different crash";
}

TEST_P(FaultBackendTest, AfterACrashEveryRequestFails) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("dead");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(kBlockBytes, 1);
  ASSERT_OK(Write(*fb, fd, path, a.get(), kBlockBytes, 0));
  ASSERT_TRUE(fb->SimulateCrash(CrashOptions{}).ok());
  EXPECT_TRUE(ReadWholeFile(path).empty());
  const Status st = Write(*fb, fd, path, a.get(), kBlockBytes, 0);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find("simulated power loss"), std::string_view::npos);
  EXPECT_TRUE(ReadWholeFile(path).empty());
}

TEST_P(FaultBackendTest, CrashWithRequestsInFlightFailsThemAndUndoesTheirData) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("inflight");
  const int fd = OpenFile(path);
  AlignedBuf base = Pattern(2 * kBlockBytes, 1);
  ASSERT_OK(Write(*fb, fd, path, base.get(), 2 * kBlockBytes, 0, IoOp::kWriteFdatasync));
  constexpr int kWrites = 4;
  std::vector<AlignedBuf> bufs;
  std::vector<IoRequest> reqs;
  reqs.reserve(kWrites + 1);
  for (int i = 0; i < kWrites; ++i) {
    bufs.push_back(Pattern(2 * kBlockBytes, 50 + i));
    reqs.push_back(testing::MakeRequest(IoOp::kWrite, fd, bufs.back().get(), 2 * kBlockBytes,
                                        static_cast<uint64_t>(i) * kBlockBytes, path));
  }
  reqs.push_back(testing::MakeRequest(IoOp::kFdatasync, fd, nullptr, 0, 0, path));
  for (IoRequest& req : reqs) fb->Submit(&req);
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});  // Nothing polled yet.
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(path), PatternVec(2 * kBlockBytes, 1)) << report->ToString();
  uint32_t failed = 0;
  for (int poll = 0; poll < 10 && fb->in_flight() > 0; ++poll) {
    ASSERT_OK(fb->Poll(0));
    while (IoRequest* req = fb->PopCompleted()) {
      EXPECT_TRUE(req->status.IsIOError()) << req->status.ToString();
      ++failed;
    }
  }
  EXPECT_EQ(failed, kWrites + 1u);
  EXPECT_EQ(fb->in_flight(), 0u);
}

TEST_P(FaultBackendTest, FallocateIsUndoneUnlessSynced) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string p1 = dir_.File("prealloc_synced"), p2 = dir_.File("prealloc_unsynced");
  const int fd1 = OpenFile(p1), fd2 = OpenFile(p2);
  constexpr uint64_t kSegment = 256 * kBlockBytes;
  IoRequest alloc1 = testing::MakeRequest(IoOp::kFallocate, fd1, nullptr, kSegment, 0, p1);
  IoRequest alloc2 = testing::MakeRequest(IoOp::kFallocate, fd2, nullptr, kSegment, 0, p2);
  ASSERT_OK(RunBlocking(*fb, &alloc1));
  ASSERT_OK(RunBlocking(*fb, &alloc2));
  ASSERT_OK(Sync(*fb, fd1, p1));
  AlignedBuf a = Pattern(kBlockBytes, 5);
  ASSERT_OK(Write(*fb, fd1, p1, a.get(), kBlockBytes, kBlockBytes));  // Unsynced, inside.
  IoRequest collapse = testing::MakeRequest(IoOp::kFallocate, fd1, nullptr, kBlockBytes, 0, p1);
  collapse.fallocate_mode = FALLOC_FL_COLLAPSE_RANGE;
  EXPECT_TRUE(RunBlocking(*fb, &collapse).IsUnsupported());
  Result<CrashReport> report = fb->SimulateCrash(CrashOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(ReadWholeFile(p1), std::vector<uint8_t>(kSegment, 0)) << report->ToString();
  EXPECT_TRUE(ReadWholeFile(p2).empty()) << report->ToString();
}

TEST_P(FaultBackendTest, MisdirectedWriteLandsElsewhere) {
  // Also with out-of-order tears on: a misdirected write keeps no sector in place.
  for (const bool out_of_order : {false, true}) {
    SCOPED_TRACE(out_of_order ? "out of order" : "prefix");
    std::unique_ptr<FaultBackend> fb = Open(3);
    const std::string path = dir_.File(out_of_order ? "misdirect-ooo" : "misdirect");
    const int fd = OpenFile(path);
    constexpr uint64_t kLen = 8 * kBlockBytes;
    AlignedBuf base = Pattern(kLen, 1), unsynced = Pattern(kBlockBytes, 2);
    ASSERT_OK(Write(*fb, fd, path, base.get(), kLen, 0, IoOp::kWriteFdatasync));
    ASSERT_OK(Write(*fb, fd, path, unsynced.get(), kBlockBytes, 2 * kBlockBytes));
    CrashOptions options;
    options.misdirect_probability = 1.0;
    options.tear_unsynced_writes = out_of_order;
    options.tear_out_of_order = out_of_order;
    Result<CrashReport> report = fb->SimulateCrash(options);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->Count(CrashEvent::Kind::kMisdirected), 1u) << report->ToString();
    const CrashEvent& event = report->events.back();
    EXPECT_NE(event.target_offset_bytes, event.offset_bytes);
    EXPECT_EQ(event.target_offset_bytes % kSector, 0u);
    std::vector<uint8_t> want = PatternVec(kLen, 1);
    Overlay(&want, PatternVec(kBlockBytes, 2), event.target_offset_bytes);
    EXPECT_EQ(ReadWholeFile(path), want) << report->ToString();
  }
}

TEST_P(FaultBackendTest, WritesWaitingBehindATornWriteNeverLand) {
  std::unique_ptr<FaultBackend> fb = Open();
  const std::string path = dir_.File("behind");
  const int fd = OpenFile(path);
  AlignedBuf a = Pattern(2 * kBlockBytes, 1), b = Pattern(2 * kBlockBytes, 2);
  AlignedBuf c = Pattern(2 * kBlockBytes, 3);
  IoRequest first = testing::MakeRequest(IoOp::kWrite, fd, a.get(), 2 * kBlockBytes, 0, path);
  IoRequest waiting =
      testing::MakeRequest(IoOp::kWrite, fd, b.get(), 2 * kBlockBytes, kBlockBytes, path);
  IoRequest torn = testing::MakeRequest(IoOp::kWrite, fd, c.get(), kBlockBytes, 0, path);
  fb->InjectAt(3, FaultSpec::TornWrite(2));
  fb->Submit(&first);
  fb->Submit(&waiting);  // Overlaps `first`: held back until it completes.
  fb->Submit(&torn);     // Power dies here.
  uint32_t done = 0;
  for (int poll = 0; poll < 100 && done < 3; ++poll) {
    ASSERT_OK(fb->Poll(-1));
    while (fb->PopCompleted() != nullptr) ++done;
  }
  ASSERT_EQ(done, 3u);
  EXPECT_TRUE(waiting.status.IsIOError()) << waiting.status.ToString();
  EXPECT_TRUE(torn.status.IsIOError()) << torn.status.ToString();
  std::vector<uint8_t> image = ReadWholeFile(path);
  ASSERT_GE(image.size(), 2 * kSector);
  EXPECT_EQ(0, std::memcmp(image.data(), c.get(), 2 * kSector));
  // `waiting` never reached the file: its bytes past `first` do not exist.
  EXPECT_LE(image.size(), 2 * kBlockBytes);
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultBackendTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Sync" : "Uring"; });

}  // namespace
}  // namespace dmalog::io

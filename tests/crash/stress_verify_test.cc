// `dmalog stress --verify` must see damage: a lost acknowledged write, a
// resurrected delete and a value that no write made, each counted and the
// first shown in full. (The kill -9 suite relies on these counts.)
#include <filesystem>
#include <string>

#include "dmalog/engine.h"
#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/expected_state.cc"  // NOLINT: the state format under test.

namespace dmalog::testing {
namespace {

class StressVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kDmalogBinary))
        << kDmalogBinary << " is missing: build the dmalog_cli target first";
    ProcessResult r = RunDmalog({"--db=" + db_, "--segment_size_bytes=4194304", "--shards=2",
                                 "stress", "--ops=3000", "--keys=400", "--seed=3"},
                                dir_.path().string());
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    ASSERT_NE(r.out.find("3000 operations acknowledged"), std::string::npos) << r.out;
  }

  ProcessResult Verify() {
    return RunDmalog({"--db=" + db_, "stress", "--verify"}, dir_.path().string());
  }

  // The first key whose committed state satisfies `pred`.
  template <typename Pred>
  uint64_t FindKey(Pred pred) {
    auto state = stress::ExpectedState::OpenExisting(db_ + ".expected_state");
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    for (uint64_t i = 0; state.ok() && i < (*state)->key_count(); ++i) {
      if (pred((*state)->Load(i).committed)) return i;
    }
    ADD_FAILURE() << "no key matches";
    return 0;
  }

  // Applies `change` to the database through the engine.
  void Tamper(const std::function<Status(Engine&)>& change) {
    Options o;
    o.db_path = db_;
    o.create_if_missing = false;
    auto db = Engine::Open(o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_OK(change(**db));
    ASSERT_OK((*db)->Close());
  }

  TestDir dir_;
  const std::string db_ = dir_.File("db");
};

TEST_F(StressVerifyTest, CleanRunVerifies) {
  ProcessResult v = Verify();
  EXPECT_EQ(v.code, 0) << v.out << v.err;
  EXPECT_EQ(NumberAfter(v.out, "verify: checked "), 400) << v.out;
  EXPECT_EQ(NumberAfter(v.out, "acknowledged writes lost "), 0) << v.out;
  EXPECT_NE(v.out.find("verify: OK"), std::string::npos) << v.out;
}

TEST_F(StressVerifyTest, LostWriteIsReported) {
  const uint64_t key = FindKey([](uint64_t id) { return id != 0 && !stress::IsDelete(id); });
  Tamper([&](Engine& db) { return db.Delete({}, stress::KeyName(key)); });
  ProcessResult v = Verify();
  EXPECT_EQ(v.code, 3) << v.out;
  EXPECT_EQ(NumberAfter(v.out, "acknowledged writes lost "), 1) << v.out;
  EXPECT_NE(v.out.find("first: acknowledged write lost: key " + stress::KeyName(key)),
            std::string::npos)
      << v.out;
}

TEST_F(StressVerifyTest, ResurrectedDeleteIsReported) {
  const uint64_t key = FindKey([](uint64_t id) { return stress::IsDelete(id); });
  Tamper(
      [&](Engine& db) { return db.Put({}, stress::KeyName(key), stress::ValueFor(key, 1, 256)); });
  ProcessResult v = Verify();
  EXPECT_EQ(v.code, 3) << v.out;
  EXPECT_EQ(NumberAfter(v.out, "resurrected deletes "), 1) << v.out;
}

TEST_F(StressVerifyTest, CorruptValueIsReported) {
  const uint64_t key = FindKey([](uint64_t id) { return id != 0 && !stress::IsDelete(id); });
  Tamper([&](Engine& db) { return db.Put({}, stress::KeyName(key), "v:garbage"); });
  ProcessResult v = Verify();
  EXPECT_EQ(v.code, 3) << v.out;
  EXPECT_EQ(NumberAfter(v.out, "corrupt values "), 1) << v.out;
}

TEST_F(StressVerifyTest, FailedOpenIsReported) {
  std::filesystem::remove_all(db_);
  ProcessResult v = Verify();
  EXPECT_EQ(v.code, 3) << v.out;
  EXPECT_NE(v.out.find("verify: FAILED: open"), std::string::npos) << v.out;
}

}  // namespace
}  // namespace dmalog::testing

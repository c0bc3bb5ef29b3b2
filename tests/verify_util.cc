#include "tests/verify_util.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dmalog::testing {

std::vector<std::string> StressArgs(const std::string& db, const std::string& state, uint64_t seed,
                                    uint64_t duration_s) {
  return {"--db=" + db,
          "--expected_state=" + state,
          "--segment_size_bytes=4194304",
          "--shards=2",
          "stress",
          "--threads=4",
          "--keys=2000",
          "--value_size_max=128",
          "--duration_s=" + std::to_string(duration_s),
          "--ops=0",
          "--seed=" + std::to_string(seed)};
}

bool VerifyLedger::Account(const ProcessResult& v) {
  if (v.out.find("verify: FAILED: open") != std::string::npos || !v.exited) {
    ++failed_opens_;
    return false;
  }
  const int64_t lost = NumberAfter(v.out, "acknowledged writes lost ");
  const int64_t resurrected = NumberAfter(v.out, "resurrected deletes ");
  const bool ok = v.code == 0 && v.out.find("verify: OK") != std::string::npos;
  if (v.out.find("nothing to check") == std::string::npos) {
    lost_ += std::max<int64_t>(lost, 0);
    resurrected_ += std::max<int64_t>(resurrected, 0);
    keys_checked_ += std::max<int64_t>(NumberAfter(v.out, "verify: checked "), 0);
    pending_resolved_ += std::max<int64_t>(NumberAfter(v.out, "found applied "), 0) +
                         std::max<int64_t>(NumberAfter(v.out, "not applied "), 0);
    const int64_t recorded = NumberAfter(v.out, " keys, ");
    if (recorded >= 0) {
      operations_checked_ += static_cast<uint64_t>(recorded) - acknowledged_;
      acknowledged_ = static_cast<uint64_t>(recorded);
    }
  }
  if (!ok && lost <= 0 && resurrected <= 0) ++other_mismatches_;
  return ok;
}

std::string VerifyLedger::Summary() const {
  return "operations checked " + std::to_string(operations_checked_) + ", keys checked " +
         std::to_string(keys_checked_) + ", pending writes resolved " +
         std::to_string(pending_resolved_) + ", acknowledged writes lost " + std::to_string(lost_) +
         ", failed opens " + std::to_string(failed_opens_) + ", resurrected deletes " +
         std::to_string(resurrected_) + ", other mismatches " + std::to_string(other_mismatches_);
}

void ExpectVerifiedClean(const VerifyLedger& ledger) {
  EXPECT_GT(ledger.operations_checked(), 0u);
  EXPECT_EQ(ledger.lost(), 0);
  EXPECT_EQ(ledger.failed_opens(), 0);
  EXPECT_EQ(ledger.resurrected(), 0);
  EXPECT_EQ(ledger.other_mismatches(), 0);
}

}  // namespace dmalog::testing

// What the suites that crash `dmalog stress` (kill -9, power cut) share: the
// stress command line, and the ledger that adds up what each
// `dmalog stress --verify` reports. Every test binary links
// tests/verify_util.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/process_util.h"

namespace dmalog::testing {

// `dmalog stress` on `db` for `duration_s`, recording what it acknowledges
// in `state`: 4 threads, 2000 keys, 2 shards, 4 MiB segments (they roll
// about once a second).
std::vector<std::string> StressArgs(const std::string& db, const std::string& state, uint64_t seed,
                                    uint64_t duration_s);

// The sum of the verifications of one suite.
class VerifyLedger {
 public:
  // A fresh database: the next verification's operations all count.
  void StartDatabase() { acknowledged_ = 0; }
  // Adds what one `stress --verify` printed; false on any failure.
  bool Account(const ProcessResult& v);

  uint64_t operations_checked() const { return operations_checked_; }
  int64_t lost() const { return lost_; }
  int64_t failed_opens() const { return failed_opens_; }
  int64_t resurrected() const { return resurrected_; }
  int64_t other_mismatches() const { return other_mismatches_; }
  // "operations checked N, keys checked N, pending writes resolved N,
  // acknowledged writes lost N, failed opens N, resurrected deletes N,
  // other mismatches N".
  std::string Summary() const;

 private:
  uint64_t acknowledged_ = 0;  // Operations the expected state held at the last verify.
  uint64_t operations_checked_ = 0;
  uint64_t keys_checked_ = 0;
  uint64_t pending_resolved_ = 0;
  int64_t lost_ = 0;
  int64_t failed_opens_ = 0;
  int64_t resurrected_ = 0;
  int64_t other_mismatches_ = 0;
};

// The assertions every crash suite ends with: something was checked, and
// nothing acknowledged was lost, no open failed, no delete came back.
void ExpectVerifiedClean(const VerifyLedger& ledger);

}  // namespace dmalog::testing

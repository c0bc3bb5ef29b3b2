#include "dmalog/options.h"

namespace dmalog {

const char* RecoveryModeName(RecoveryMode mode) noexcept {
  switch (mode) {
    case RecoveryMode::kTolerateCorruptedTailRecords:
      return "tolerate_corrupted_tail_records";
    case RecoveryMode::kAbsoluteConsistency:
      return "absolute_consistency";
    case RecoveryMode::kPointInTime:
      return "point_in_time";
    case RecoveryMode::kSkipAnyCorruptedRecords:
      return "skip_any_corrupted_records";
  }
  return "unknown";
}

bool ParseRecoveryMode(const std::string& name, RecoveryMode* mode) {
  for (RecoveryMode m :
       {RecoveryMode::kTolerateCorruptedTailRecords, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTime, RecoveryMode::kSkipAnyCorruptedRecords}) {
    if (name == RecoveryModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

}  // namespace dmalog

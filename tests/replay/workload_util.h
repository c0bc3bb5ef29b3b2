// The short durable workload of the flush-point replay suite and its model:
// which states the database may be in once a given number of its writes
// were acknowledged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/status.h"

namespace dmalog::testing {

// One key written (or deleted) by a workload operation.
struct WorkloadEntry {
  std::string key;
  bool deleted = false;
  uint32_t version = 0;      // Puts: which write of the key (from 1).
  uint32_t value_bytes = 0;  // Puts: the value's length.
};

// One Put, Delete or Write(WriteBatch), synchronous (sync = true).
struct WorkloadOp {
  std::vector<WorkloadEntry> entries;  // One, unless a batch.
  bool batch = false;
  uint64_t issue_ns = 0;  // MonotonicNowNs() just before the call.
  uint64_t ack_ns = 0;    // MonotonicNowNs() just after it returned OK.
};

struct WorkloadOptions {
  uint32_t ops = 0;
  uint64_t seed = 0;
  uint32_t keys = 0;  // Plain keys "key-NNN"; batches use the "{g}:N" keys.
};

// The value of `key`'s put number `version`: a readable prefix
// "v:<key>:<version>:" then bytes derived from (key, version), `bytes` long.
std::string ValueOf(const std::string& key, uint32_t version, uint32_t bytes);

// The operations of a workload (times not yet set); deterministic per seed.
std::vector<WorkloadOp> PlanWorkload(const WorkloadOptions& options);

// Runs `ops` in order through `db` (not owned), each acknowledged before the
// next starts; returns them with their issue and acknowledgement times.
Result<std::vector<WorkloadOp>> RunWorkload(Engine* db, std::vector<WorkloadOp> ops);

// The database a prefix of the operations leaves: key -> last put.
class Model {
 public:
  void Apply(const WorkloadOp& op);
  const std::map<std::string, WorkloadEntry>& keys() const { return keys_; }

 private:
  std::map<std::string, WorkloadEntry> keys_;
};

// OK when `contents` (a full scan, in key order) is exactly one of the
// `allowed` states (not owned); otherwise Corruption naming the first key
// that differs from allowed[0] and what was found there.
Status CheckContents(const std::vector<KeyValue>& contents,
                     const std::vector<const Model*>& allowed);

// Opens the database at `options.db_path`, scans it all, checks it with
// CheckContents and closes it. The status says which step failed.
Status VerifyDatabase(const Options& options, const std::vector<const Model*>& allowed);

}  // namespace dmalog::testing

#include "tests/replay/workload_util.h"

#include <cassert>
#include <cstdio>
#include <random>

#include "tests/replay/replay_util.h"

namespace dmalog::testing {
namespace {

constexpr uint32_t kBatchKeys = 8;  // "{g}:0" .. "{g}:7", one shard.
constexpr uint32_t kBatchEntriesMax = 4;
constexpr uint32_t kBatchValueBytesMax = 128 * 1024;  // 4 x 128 KiB < 2 MiB batch limit.
constexpr uint64_t kScanKeysMax = 100'000;
// Value sizes, chosen uniformly: small records and large ones, so that a
// short workload fills 4 MiB segments a few times.
constexpr uint32_t kValueBytes[] = {40, 1000, 8000, 64 * 1024, 300 * 1024, 900 * 1024};
static_assert(kValueBytes[std::size(kValueBytes) - 1] <= (1u << 20), "kValueBytesMax is 1 MiB");

std::string PlainKey(uint32_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key-%03u", i);
  return buf;
}

std::string Describe(const std::string& key, const std::string* value) {
  if (value == nullptr) return key + " absent";
  const size_t prefix_end = value->find(':', value->find(':', 2) + 1);
  return key + " = \"" + value->substr(0, std::min<size_t>(prefix_end, 64)) + "...\" (" +
         std::to_string(value->size()) + " bytes)";
}

std::string Expected(const Model& model, const std::string& key) {
  auto it = model.keys().find(key);
  if (it == model.keys().end()) return key + " absent";
  return key + " = put #" + std::to_string(it->second.version) + " (" +
         std::to_string(it->second.value_bytes) + " bytes)";
}

bool Matches(const std::vector<KeyValue>& contents, const Model& model) {
  if (contents.size() != model.keys().size()) return false;
  auto it = model.keys().begin();
  for (const KeyValue& kv : contents) {
    const WorkloadEntry& e = it->second;
    if (kv.key != it->first || kv.value != ValueOf(e.key, e.version, e.value_bytes)) return false;
    ++it;
  }
  return true;
}

}  // namespace

std::string ValueOf(const std::string& key, uint32_t version, uint32_t bytes) {
  std::string v = "v:" + key + ":" + std::to_string(version) + ":";
  std::mt19937_64 rng(std::hash<std::string>()(v));
  while (v.size() < bytes) v.push_back(static_cast<char>('a' + rng() % 26));
  v.resize(bytes);  // Tiny values keep only part of the prefix.
  return v;
}

std::vector<WorkloadOp> PlanWorkload(const WorkloadOptions& options) {
  assert(options.keys > 0);
  std::mt19937_64 rng(options.seed);
  std::map<std::string, uint32_t> versions;  // Puts so far per key.
  auto put = [&](const std::string& key, uint32_t bytes) {
    return WorkloadEntry{key, false, ++versions[key], bytes};
  };
  std::vector<WorkloadOp> ops;
  for (uint32_t n = 0; n < options.ops; ++n) {
    WorkloadOp op;
    const uint32_t kind = rng() % 100;
    const std::string key = PlainKey(rng() % options.keys);
    if (kind < 20) {
      op.entries.push_back(WorkloadEntry{key, true, 0, 0});  // Deletes, present or not.
    } else if (kind < 35) {
      op.batch = true;
      const uint32_t count = 2 + rng() % (kBatchEntriesMax - 1);
      for (uint32_t i = 0; i < count; ++i) {
        const std::string k = "{g}:" + std::to_string(rng() % kBatchKeys);
        if (rng() % 4 == 0) {
          op.entries.push_back(WorkloadEntry{k, true, 0, 0});
        } else {
          op.entries.push_back(
              put(k, std::min(kValueBytes[rng() % std::size(kValueBytes)], kBatchValueBytesMax)));
        }
      }
    } else {
      op.entries.push_back(put(key, kValueBytes[rng() % std::size(kValueBytes)]));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

Result<std::vector<WorkloadOp>> RunWorkload(Engine* db, std::vector<WorkloadOp> ops) {
  const WriteOptions sync;  // sync = true: durable on return.
  for (size_t n = 0; n < ops.size(); ++n) {
    WorkloadOp& op = ops[n];
    Status s;
    op.issue_ns = MonotonicNowNs();
    if (op.batch) {
      WriteBatch batch;
      for (const WorkloadEntry& e : op.entries) {
        s = e.deleted ? batch.Delete(e.key)
                      : batch.Put(e.key, ValueOf(e.key, e.version, e.value_bytes));
        if (!s.ok()) break;
      }
      if (s.ok()) s = db->Write(sync, batch);
    } else {
      const WorkloadEntry& e = op.entries[0];
      s = e.deleted ? db->Delete(sync, e.key)
                    : db->Put(sync, e.key, ValueOf(e.key, e.version, e.value_bytes));
    }
    op.ack_ns = MonotonicNowNs();
    if (!s.ok()) return s.WithContext("workload operation " + std::to_string(n));
  }
  return ops;
}

void Model::Apply(const WorkloadOp& op) {
  for (const WorkloadEntry& e : op.entries) {
    if (e.deleted) {
      keys_.erase(e.key);
    } else {
      keys_[e.key] = e;
    }
  }
}

Status CheckContents(const std::vector<KeyValue>& contents,
                     const std::vector<const Model*>& allowed) {
  assert(!allowed.empty());
  for (const Model* model : allowed) {
    if (Matches(contents, *model)) return Status::OK();
  }
  // Name the first difference from allowed[0] (the acknowledged state).
  const Model& model = *allowed[0];
  std::map<std::string, const std::string*> found;
  for (const KeyValue& kv : contents) found[kv.key] = &kv.value;
  for (const auto& [key, entry] : model.keys()) found.emplace(key, nullptr);
  for (const auto& [key, value] : found) {
    auto it = model.keys().find(key);
    const bool same = it == model.keys().end()
                          ? value == nullptr
                          : value != nullptr &&
                                *value == ValueOf(key, it->second.version, it->second.value_bytes);
    if (!same) {
      return Status::Corruption("found " + Describe(key, value) + ", expected " +
                                Expected(model, key) +
                                (allowed.size() > 1 ? " (or the in-flight write applied)" : ""));
    }
  }
  return Status::Corruption("contents differ from every allowed state");
}

Status VerifyDatabase(const Options& options, const std::vector<const Model*>& allowed) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(options);
  if (!db.ok()) return db.status().WithContext("Engine::Open");
  ScanOptions scan;
  scan.max_keys = kScanKeysMax;
  Result<std::vector<KeyValue>> contents = (*db)->Scan(scan);
  Status s =
      contents.ok() ? CheckContents(*contents, allowed) : contents.status().WithContext("Scan");
  Status closed = (*db)->Close();
  if (s.ok() && !closed.ok()) s = closed.WithContext("Close");
  return s;
}

}  // namespace dmalog::testing

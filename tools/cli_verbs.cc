#include "tools/cli_verbs.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <string>

#include "tools/demo.h"
#include "tools/load.h"
#include "tools/stress.h"

namespace dmalog::cli {
namespace {

// Keys per Engine::Scan call and records per Engine::Tail call: a dump of
// any size runs in bounded memory.
constexpr uint64_t kScanPageKeys = 1000;
constexpr uint64_t kTailPageRecords = 1000;
constexpr std::string_view kSeparator = " ==> ";

void PrintError(std::ostream& err, const Status& s) { err << "dmalog: " << s.ToString() << "\n"; }

// Calls `fn` for every key in `range` (up to range.max_keys), in key order,
// one bounded page at a time. Stops at the first error `fn` returns.
Status ForEachKey(Engine* db, const ScanOptions& range,
                  const std::function<Status(const KeyValue&)>& fn) {
  ScanOptions page = range;
  uint64_t left = range.max_keys;
  const uint64_t pages_max = range.max_keys / kScanPageKeys + 1;
  for (uint64_t pages = 0; left > 0 && pages < pages_max; ++pages) {
    page.max_keys = std::min(left, kScanPageKeys);
    Result<std::vector<KeyValue>> kvs = db->Scan(page);
    if (!kvs.ok()) return kvs.status();
    assert(kvs->size() <= page.max_keys);
    for (const KeyValue& kv : *kvs) DMALOG_RETURN_IF_ERROR(fn(kv));
    left -= kvs->size();
    if (kvs->size() < page.max_keys) break;
    assert(kvs->back().key >= page.from);
    page.from = kvs->back().key + '\0';  // The next key after the last one.
  }
  return Status::OK();
}

// A key or value printed as text (not hex) that would not survive a
// dump | load round trip. Each side printed as hex is safe.
Status CheckDumpable(const KeyValue& kv, bool key_hex, bool value_hex) {
  const bool key_bad = !key_hex && (kv.key.find(kSeparator) != std::string::npos ||
                                    kv.key.find('\n') != std::string::npos);
  const bool value_bad = !value_hex && kv.value.find('\n') != std::string::npos;
  if (key_bad || value_bad) {
    return Status::InvalidArgument(
        "key '" + (key_hex ? ToHex(kv.key) : kv.key) + "'" +
        (key_bad ? " contains a newline or ' ==> '" : ": its value contains a newline") +
        ", so the dump would not load back; dump with --hex instead");
  }
  return Status::OK();
}

int Scan(const Command& cmd, Engine* db, std::ostream& out, std::ostream& err) {
  const bool check = cmd.verb == Verb::kDump && !(cmd.key_hex && cmd.value_hex);
  Status s = ForEachKey(db, cmd.scan, [&](const KeyValue& kv) -> Status {
    if (check) DMALOG_RETURN_IF_ERROR(CheckDumpable(kv, cmd.key_hex, cmd.value_hex));
    out << Display(kv.key, cmd.key_hex) << kSeparator << Display(kv.value, cmd.value_hex) << "\n";
    return Status::OK();
  });
  if (!s.ok()) PrintError(err, s);
  return ExitCodeFor(s);
}

int Tail(const Command& cmd, Engine* db, std::ostream& out, std::ostream& err) {
  TailOptions page = cmd.tail;
  uint64_t left = cmd.tail.max_records;
  const uint64_t pages_max = cmd.tail.max_records / kTailPageRecords + 1;
  for (uint64_t pages = 0; left > 0 && pages < pages_max; ++pages) {
    page.max_records = std::min(left, kTailPageRecords);
    Result<std::vector<LogRecord>> records = db->Tail(page);
    if (!records.ok()) {
      PrintError(err, records.status());
      return ExitCodeFor(records.status());
    }
    for (const LogRecord& r : *records) {
      assert(r.sequence >= page.from_sequence);
      out << r.sequence << (r.type == LogRecord::Type::kPut ? " PUT " : " DELETE ")
          << Display(r.key, cmd.key_hex);
      if (r.type == LogRecord::Type::kPut) out << kSeparator << Display(r.value, cmd.value_hex);
      out << "\n";
    }
    left -= std::min<uint64_t>(left, records->size());
    if (records->size() < page.max_records) break;
    page.from_sequence = records->back().sequence + 1;
  }
  return kExitOk;
}

int Get(const Command& cmd, Engine* db, std::ostream& out, std::ostream& err) {
  Result<std::string> value = db->Get(cmd.key);
  if (value.ok()) {
    out << Display(*value, cmd.value_hex) << "\n";
    return kExitOk;
  }
  if (value.status().IsNotFound()) {
    err << "NotFound: " << Display(cmd.key, cmd.key_hex) << "\n";
    return kExitNotFound;
  }
  PrintError(err, value.status());
  return ExitCodeFor(value.status());
}

int Write(const Command& cmd, Engine* db, std::ostream& err) {
  Status s = cmd.verb == Verb::kPut ? db->Put(cmd.write_options, cmd.key, cmd.value)
                                    : db->Delete(cmd.write_options, cmd.key);
  if (!s.ok()) PrintError(err, s);
  return ExitCodeFor(s);
}

int RunVerb(const Command& cmd, Engine* db, std::istream& in, std::ostream& out,
            std::ostream& err) {
  switch (cmd.verb) {
    case Verb::kPut:
    case Verb::kDelete:
      return Write(cmd, db, err);
    case Verb::kGet:
      return Get(cmd, db, out, err);
    case Verb::kScan:
    case Verb::kDump:
      return Scan(cmd, db, out, err);
    case Verb::kTail:
      return Tail(cmd, db, out, err);
    case Verb::kLoad:
      return Load(cmd, db, in, err);
    case Verb::kStats:
      out << db->Stats().ToString();
      return kExitOk;
    case Verb::kDemo:
    case Verb::kStress:
      break;  // RunCommand runs these: they open the database themselves.
  }
  assert(false && "unhandled verb");
  return kExitUsage;
}

}  // namespace

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  if (status.IsNotFound()) return kExitNotFound;
  if (status.IsInvalidArgument()) return kExitUsage;
  return kExitError;
}

Result<std::unique_ptr<Engine>> OpenForCli(const Command& cmd) {
  Result<std::unique_ptr<Engine>> db = Engine::Open(cmd.options);
  if (db.ok() || !db.status().IsNotFound() || cmd.options.create_if_missing) return db;
  // A read verb on a path that holds no database (no directory, or one
  // without a MANIFEST): the engine says which; add how the CLI creates one.
  return Status::IOError(std::string(db.status().message()) +
                         " (check --db, or create the database by writing to it with put or "
                         "load, or pass --create_if_missing)");
}

int CloseAndExit(Engine* db, int exit_code, std::ostream& err) {
  Status s = db->Close();
  if (s.ok()) return exit_code;
  err << "dmalog: close: " << s.ToString() << "\n";
  return kExitError;
}

int RunCommand(const Command& cmd, std::istream& in, std::ostream& out, std::ostream& err) {
  if (cmd.verb == Verb::kDemo) return RunDemo(cmd, out, err);
  if (cmd.verb == Verb::kStress) {
    return RunStress(cmd.stress, cmd.options, cmd.write_options, out, err);
  }
  Result<std::unique_ptr<Engine>> db = OpenForCli(cmd);
  if (!db.ok()) {
    PrintError(err, db.status());
    return db.status().IsInvalidArgument() ? kExitUsage : kExitError;
  }
  const int code = RunVerb(cmd, db->get(), in, out, err);
  out.flush();
  return CloseAndExit(db->get(), code, err);
}

}  // namespace dmalog::cli

// The `dmalog` command line, parsed: a verb, its arguments and the options
// the flags select. Parsing is a pure function of the flag values (as text)
// and the positional arguments, so it runs without a process, gflags or a
// database (and a fuzzer can drive it).
//
//   CliFlags flags = ...;                       // from gflags (tools/dmalog.cc)
//   Result<Command> cmd = ParseCommand(flags, {"put", "k", "v"});
//   if (!cmd.ok()) { print cmd.status().message() and Usage(); exit kExitUsage; }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmalog/engine.h"
#include "dmalog/options.h"
#include "dmalog/status.h"
#include "tools/stress.h"

namespace dmalog::cli {

// Exit statuses, the contract scripts rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitNotFound = 1;  // `get` of a missing key.
inline constexpr int kExitUsage = 2;     // Bad verb, arguments, flag value or input line.
inline constexpr int kExitError = 3;     // I/O error, corruption, lock held, ...

// Limits on what the flags may ask for.
inline constexpr uint32_t kDemoThreadsMax = 64;
inline constexpr uint64_t kDemoRecordsPerThreadMax = 1'000'000;
inline constexpr uint32_t kShardsMax = 256;
// Positional arguments the longest verb (put KEY VALUE) takes, plus the verb.
inline constexpr size_t kPositionalArgsMax = 3;

enum class Verb { kPut, kGet, kDelete, kScan, kTail, kDump, kLoad, kStats, kDemo, kStress };

// Every flag's value as given (numbers still as text, so that a bad number
// is a usage error named by this parser). An empty numeric string means
// "not given": the verb's default applies.
struct CliFlags {
  std::string db = "./dmalog-data";
  bool hex = false;
  bool key_hex = false;
  bool value_hex = false;
  std::string from;
  std::string to;
  std::string max_keys;
  std::string from_seq;
  std::string shard;
  std::string max_records;
  std::string shards;
  std::string segment_size_bytes;
  std::string recovery_mode;
  bool sync = true;
  std::optional<bool> create_if_missing;  // Unset: the verb decides.
  std::string threads;
  std::string num;
  // stress (tools/stress.h).
  bool verify = false;
  std::string expected_state;
  std::string ops;
  std::string keys;
  std::string duration_s;
  std::string seed;
  std::string batch_percent;
  std::string delete_percent;
  std::string value_size_max;
};

struct Command {
  Verb verb = Verb::kStats;
  Options options;
  WriteOptions write_options;
  bool key_hex = false;    // Keys are given and printed as 0x-prefixed hex.
  bool value_hex = false;  // Values likewise.
  std::string key;         // put, get, delete: decoded.
  std::string value;       // put: decoded.
  ScanOptions scan;        // scan, dump: from/to decoded; max_keys = total.
  TailOptions tail;        // tail: max_records = total.
  uint32_t demo_threads = 8;
  uint64_t demo_records_per_thread = 2000;
  StressOptions stress;  // stress.
};

// The verb and flag summary printed on usage errors and --help.
std::string Usage();

// InvalidArgument naming the bad verb, argument or flag and what to pass
// instead.
Result<Command> ParseCommand(const CliFlags& flags, const std::vector<std::string>& args);

// "0x" + two upper-case hex digits per byte, as RocksDB's ldb prints.
std::string ToHex(std::string_view bytes);
// Parses "0x..." (either case, even digit count); InvalidArgument naming
// `what` (e.g. "key") otherwise.
Result<std::string> FromHex(std::string_view text, std::string_view what);

// `bytes` as the user gave it / wants it: hex when `hex`, raw otherwise.
inline std::string Display(std::string_view bytes, bool hex) {
  return hex ? ToHex(bytes) : std::string(bytes);
}

}  // namespace dmalog::cli

#include "tools/cli_command.h"

#include <charconv>
#include <limits>

namespace dmalog::cli {
namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kTailRecordsDefault = 1000;
constexpr uint64_t kSegmentSizeBytesLimit = 1ull << 32;

struct VerbSpec {
  const char* name;
  Verb verb;
  size_t args;            // Positional arguments after the verb.
  bool creates_database;  // create_if_missing defaults to true.
  const char* synopsis;
};

constexpr VerbSpec kVerbs[] = {
    {"put", Verb::kPut, 2, true, "put KEY VALUE"},
    {"get", Verb::kGet, 1, false, "get KEY"},
    {"delete", Verb::kDelete, 1, false, "delete KEY"},
    {"scan", Verb::kScan, 0, false, "scan [--from=K] [--to=K] [--max_keys=N]"},
    {"tail", Verb::kTail, 0, false, "tail [--from_seq=N] [--shard=N] [--max_records=N]"},
    {"dump", Verb::kDump, 0, false, "dump"},
    {"load", Verb::kLoad, 0, true, "load  (reads 'KEY ==> VALUE' lines from stdin)"},
    {"stats", Verb::kStats, 0, false, "stats"},
    {"demo", Verb::kDemo, 0, true, "demo [--threads=N] [--num=N]"},
    {"stress", Verb::kStress, 0, true,
     "stress [--threads=N] [--ops=N] [--keys=N] [--duration_s=N] [--seed=N] [--verify]"},
};
static_assert(sizeof(kVerbs) / sizeof(kVerbs[0]) == 10, "one spec per Verb");

const VerbSpec* FindVerb(std::string_view name) {
  for (const VerbSpec& v : kVerbs) {
    if (name == v.name) return &v;
  }
  return nullptr;
}

// Parses flag --`name`=`text` as an integer in [min, max]; `fallback` when
// the flag was not given.
Result<uint64_t> ParseNumber(std::string_view name, const std::string& text, uint64_t min,
                             uint64_t max, uint64_t fallback) {
  if (text.empty()) return fallback;
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    return Status::InvalidArgument("--" + std::string(name) + "=" + text +
                                   " is not a whole number between " + std::to_string(min) +
                                   " and " + std::to_string(max) + "; pass e.g. --" +
                                   std::string(name) + "=" + std::to_string(min));
  }
  return value;
}

Status ParseStorageFlags(const CliFlags& f, const VerbSpec& spec, Command* cmd) {
  Options& o = cmd->options;
  o.db_path = f.db;
  if (o.db_path.empty()) return Status::InvalidArgument("--db is empty; name a directory");
  o.create_if_missing = f.create_if_missing.value_or(spec.creates_database);
  Result<uint64_t> shards = ParseNumber("shards", f.shards, 1, kShardsMax, 0);
  if (!shards.ok()) return shards.status();
  o.shard_count = static_cast<uint32_t>(*shards);
  Result<uint64_t> segment = ParseNumber("segment_size_bytes", f.segment_size_bytes, 1,
                                         kSegmentSizeBytesLimit, o.segment_size_bytes);
  if (!segment.ok()) return segment.status();
  o.segment_size_bytes = *segment;
  if (!f.recovery_mode.empty() && !ParseRecoveryMode(f.recovery_mode, &o.recovery_mode)) {
    return Status::InvalidArgument(
        "--recovery_mode=" + f.recovery_mode +
        " is unknown; pass one of tolerate_corrupted_tail_records, absolute_consistency, "
        "point_in_time, skip_any_corrupted_records");
  }
  cmd->write_options.sync = f.sync;
  return Status::OK();
}

// Decodes `text` (a key or value argument) when hex is on.
Result<std::string> Decode(const std::string& text, bool hex, std::string_view what) {
  if (!hex) return text;
  return FromHex(text, what);
}

Status ParseRangeFlags(const CliFlags& f, Command* cmd) {
  Result<std::string> from = Decode(f.from, cmd->key_hex && !f.from.empty(), "--from");
  if (!from.ok()) return from.status();
  Result<std::string> to = Decode(f.to, cmd->key_hex && !f.to.empty(), "--to");
  if (!to.ok()) return to.status();
  Result<uint64_t> max_keys = ParseNumber("max_keys", f.max_keys, 1, kUnlimited, kUnlimited);
  if (!max_keys.ok()) return max_keys.status();
  cmd->scan.from = std::move(*from);
  cmd->scan.to = std::move(*to);
  cmd->scan.max_keys = *max_keys;
  return Status::OK();
}

Status ParseTailFlags(const CliFlags& f, Command* cmd) {
  Result<uint64_t> from = ParseNumber("from_seq", f.from_seq, 1, kUnlimited, 1);
  if (!from.ok()) return from.status();
  Result<uint64_t> shard = ParseNumber("shard", f.shard, 0, kShardsMax - 1, 0);
  if (!shard.ok()) return shard.status();
  Result<uint64_t> max =
      ParseNumber("max_records", f.max_records, 1, kUnlimited, kTailRecordsDefault);
  if (!max.ok()) return max.status();
  cmd->tail.from_sequence = *from;
  cmd->tail.shard = static_cast<uint32_t>(*shard);
  cmd->tail.max_records = *max;
  return Status::OK();
}

Status ParseDemoFlags(const CliFlags& f, Command* cmd) {
  Result<uint64_t> threads = ParseNumber("threads", f.threads, 1, kDemoThreadsMax, 8);
  if (!threads.ok()) return threads.status();
  Result<uint64_t> num = ParseNumber("num", f.num, 1, kDemoRecordsPerThreadMax, 2000);
  if (!num.ok()) return num.status();
  cmd->demo_threads = static_cast<uint32_t>(*threads);
  cmd->demo_records_per_thread = *num;
  return Status::OK();
}

Status ParsePercent(std::string_view name, const std::string& text, uint32_t fallback,
                    uint32_t* percent) {
  Result<uint64_t> value = ParseNumber(name, text, 0, 100, fallback);
  if (!value.ok()) return value.status();
  *percent = static_cast<uint32_t>(*value);
  return Status::OK();
}

Status ParseStressFlags(const CliFlags& f, Command* cmd) {
  StressOptions& s = cmd->stress;
  s.verify = f.verify;
  s.expected_state_path = f.expected_state;
  Result<uint64_t> threads = ParseNumber("threads", f.threads, 1, kStressThreadsMax, s.threads);
  if (!threads.ok()) return threads.status();
  s.threads = static_cast<uint32_t>(*threads);
  Result<uint64_t> duration =
      ParseNumber("duration_s", f.duration_s, 0, kStressDurationSecondsMax, 0);
  if (!duration.ok()) return duration.status();
  s.duration_s = *duration;
  // With a duration and no --ops, the duration alone ends the run.
  const uint64_t ops_default = s.duration_s > 0 ? 0 : kStressOpsDefault;
  Result<uint64_t> ops = ParseNumber("ops", f.ops, 0, kUnlimited, ops_default);
  if (!ops.ok()) return ops.status();
  s.ops = *ops;
  if (s.ops == 0 && s.duration_s == 0) {
    return Status::InvalidArgument("--ops=0 runs forever; give --duration_s=N as well");
  }
  Result<uint64_t> keys = ParseNumber("keys", f.keys, kStressKeysMin, kStressKeysMax, s.keys);
  if (!keys.ok()) return keys.status();
  s.keys = *keys;
  Result<uint64_t> seed = ParseNumber("seed", f.seed, 0, kUnlimited, s.seed);
  if (!seed.ok()) return seed.status();
  s.seed = *seed;
  DMALOG_RETURN_IF_ERROR(ParsePercent("batch_percent", f.batch_percent, 10, &s.batch_percent));
  DMALOG_RETURN_IF_ERROR(ParsePercent("delete_percent", f.delete_percent, 15, &s.delete_percent));
  Result<uint64_t> value = ParseNumber("value_size_max", f.value_size_max, kStressValueSizeMin,
                                       kStressValueSizeMax, s.value_size_max);
  if (!value.ok()) return value.status();
  s.value_size_max = static_cast<uint32_t>(*value);
  return Status::OK();
}

Status ParseVerbArgs(const std::vector<std::string>& args, Command* cmd) {
  if (cmd->verb == Verb::kPut || cmd->verb == Verb::kGet || cmd->verb == Verb::kDelete) {
    Result<std::string> key = Decode(args[1], cmd->key_hex, "KEY");
    if (!key.ok()) return key.status();
    cmd->key = std::move(*key);
  }
  if (cmd->verb == Verb::kPut) {
    Result<std::string> value = Decode(args[2], cmd->value_hex, "VALUE");
    if (!value.ok()) return value.status();
    cmd->value = std::move(*value);
  }
  return Status::OK();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Usage() {
  std::string out =
      "Usage: dmalog [--db=DIR] [flags] VERB [ARGS]\n"
      "Verbs:\n";
  for (const VerbSpec& v : kVerbs) out += std::string("  ") + v.synopsis + "\n";
  out +=
      "Flags:\n"
      "  --db=DIR                 database directory (default ./dmalog-data)\n"
      "  --hex                    keys and values are 0x-prefixed hex (both)\n"
      "  --key_hex, --value_hex   keys / values are 0x-prefixed hex\n"
      "  --sync                   writes are durable before the verb returns (default true)\n"
      "  --create_if_missing      create DIR (default: true for put/load/demo)\n"
      "  --shards=N               shards of a new database (default: one per CPU)\n"
      "  --segment_size_bytes=N   segment size of a new database (64 KiB multiple, 4 MiB..4 GiB)\n"
      "  --recovery_mode=NAME     tolerate_corrupted_tail_records (default), "
      "absolute_consistency,\n"
      "                           point_in_time, skip_any_corrupted_records\n"
      "  --threads=N, --num=N     demo: writer threads (default 8), records each (default 2000)\n"
      "  stress: --threads=N (4) --ops=N total (20000; 0 with --duration_s: no limit)\n"
      "          --keys=N (10000) --duration_s=N --seed=N --batch_percent=P (10)\n"
      "          --delete_percent=P (15) --value_size_max=N (256) --nosync\n"
      "          --expected_state=PATH (default DIR.expected_state) --verify\n"
      "  --                       ends the flags: a later KEY or VALUE may start with '-'\n"
      "Exit status: 0 ok, 1 key not found, 2 usage or input error, 3 I/O, corruption or lock "
      "error.\n";
  return out;
}

Result<Command> ParseCommand(const CliFlags& flags, const std::vector<std::string>& args) {
  if (args.empty()) return Status::InvalidArgument("no verb given; name one of the verbs below");
  const VerbSpec* spec = FindVerb(args[0]);
  if (spec == nullptr) {
    return Status::InvalidArgument("unknown verb '" + args[0] + "'; use one of the verbs below");
  }
  assert(spec->args + 1 <= kPositionalArgsMax);
  if (args.size() != spec->args + 1) {
    return Status::InvalidArgument(
        std::string(spec->name) + " takes " + std::to_string(spec->args) + " argument(s), got " +
        std::to_string(args.size() - 1) + "; usage: dmalog " + spec->synopsis);
  }
  Command cmd;
  cmd.verb = spec->verb;
  cmd.key_hex = flags.hex || flags.key_hex;
  cmd.value_hex = flags.hex || flags.value_hex;
  DMALOG_RETURN_IF_ERROR(ParseStorageFlags(flags, *spec, &cmd));
  DMALOG_RETURN_IF_ERROR(ParseRangeFlags(flags, &cmd));
  DMALOG_RETURN_IF_ERROR(ParseTailFlags(flags, &cmd));
  DMALOG_RETURN_IF_ERROR(ParseDemoFlags(flags, &cmd));
  if (cmd.verb == Verb::kStress) DMALOG_RETURN_IF_ERROR(ParseStressFlags(flags, &cmd));
  DMALOG_RETURN_IF_ERROR(ParseVerbArgs(args, &cmd));
  return cmd;
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out = "0x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

Result<std::string> FromHex(std::string_view text, std::string_view what) {
  const bool prefixed = text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (!prefixed || text.size() % 2 != 0) {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(text) +
                                   "' is not hex: with --hex/--key_hex/--value_hex give it as 0x "
                                   "followed by two hex digits per byte, e.g. 0x6B6579");
  }
  std::string out;
  out.reserve(text.size() / 2 - 1);
  for (size_t i = 2; i < text.size(); i += 2) {
    const int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument(std::string(what) + " '" + std::string(text) +
                                     "' has a non-hex digit at position " + std::to_string(i) +
                                     "; use only 0-9, a-f, A-F after 0x");
    }
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

}  // namespace dmalog::cli

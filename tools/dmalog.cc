// dmalog: the command-line tool, in the style of RocksDB's ldb.
//
//   dmalog --db=DIR put KEY VALUE | get KEY | delete KEY | scan | tail |
//          dump | load | stats | demo | stress [--verify]
//
// Flags are gflags flags; numbers are taken as text and checked by
// ParseCommand (tools/cli_command.h) so that every bad value is a usage
// error (exit 2) that says what to pass instead.
#include <gflags/gflags.h>

#include <iostream>
#include <string>
#include <vector>

#include "tools/cli_command.h"
#include "tools/cli_verbs.h"

DEFINE_string(db, "./dmalog-data", "database directory");
DEFINE_bool(hex, false, "keys and values are given and printed as 0x-prefixed hex");
DEFINE_bool(key_hex, false, "keys are given and printed as 0x-prefixed hex");
DEFINE_bool(value_hex, false, "values are given and printed as 0x-prefixed hex");
DEFINE_string(from, "", "scan/dump: first key (inclusive)");
DEFINE_string(to, "", "scan/dump: end key (exclusive)");
DEFINE_string(max_keys, "", "scan/dump: at most this many keys (default: all)");
DEFINE_string(from_seq, "", "tail: first sequence number (default 1)");
DEFINE_string(shard, "", "tail: the shard whose log to print (default 0)");
DEFINE_string(max_records, "", "tail: at most this many records (default 1000)");
DEFINE_string(shards, "", "shards of a new database (default: one per CPU)");
DEFINE_string(segment_size_bytes, "", "segment file size of a new database (default 64 MiB)");
DEFINE_string(recovery_mode, "",
              "tolerate_corrupted_tail_records (default), "
              "absolute_consistency, point_in_time or skip_any_corrupted_records");
DEFINE_bool(sync, true, "writes are durable (fdatasync'ed) before they are acknowledged");
DEFINE_bool(create_if_missing, false,
            "create the database if missing (default: true for put/load/demo)");
DEFINE_string(threads, "", "demo: writer threads (default 8)");
DEFINE_string(num, "", "demo: records per writer thread (default 2000)");
DEFINE_bool(verify, false, "stress: check the database against the expected state");
DEFINE_string(expected_state, "", "stress: expected-state file (default DB.expected_state)");
DEFINE_string(ops, "", "stress: operations in all (default 20000)");
DEFINE_string(keys, "", "stress: key space (default 10000)");
DEFINE_string(duration_s, "", "stress: stop after this many seconds");
DEFINE_string(seed, "", "stress: random seed (default 1)");
DEFINE_string(batch_percent, "", "stress: percent of operations that are batches (default 10)");
DEFINE_string(delete_percent, "", "stress: percent of writes that are deletes (default 15)");
DEFINE_string(value_size_max, "", "stress: largest value in bytes (default 256)");

namespace {

// Arguments on one command line at most (a bound on the parsing loop).
constexpr int kArgsMax = 4096;

struct Args {
  std::vector<std::string> positional;
  bool help = false;
};

bool IsBoolFlag(const std::string& name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(name.c_str(), &info) && info.type == "bool";
}

// Sets one flag from "--name=value", "--name value", "--name" or "--noname"
// (bools); `next` is the argument after it (may be null). Returns how many
// arguments it used, or InvalidArgument naming the flag.
dmalog::Result<int> ApplyFlag(const std::string& arg, const char* next) {
  std::string body = arg.substr(arg.find_first_not_of('-'));
  const size_t eq = body.find('=');
  std::string name = body.substr(0, eq), value;
  int used = 1;
  if (eq != std::string::npos) {
    value = body.substr(eq + 1);
  } else if (IsBoolFlag(name)) {
    value = "true";
  } else if (name.rfind("no", 0) == 0 && IsBoolFlag(name.substr(2))) {
    name = name.substr(2);
    value = "false";
  } else if (next != nullptr) {
    value = next;
    used = 2;
  } else {
    return dmalog::Status::InvalidArgument("flag --" + name + " needs a value: --" + name +
                                           "=VALUE");
  }
  gflags::CommandLineFlagInfo info;
  if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
    return dmalog::Status::InvalidArgument("unknown flag --" + name + "; see the flags below");
  }
  if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
    return dmalog::Status::InvalidArgument("bad value '" + value + "' for --" + name + " (a " +
                                           info.type + " flag); e.g. --" + name + "=" +
                                           info.default_value);
  }
  return used;
}

// Applies every flag through gflags (so that a bad one is our usage error,
// not gflags' exit(1)) and returns the positional arguments.
dmalog::Result<Args> ApplyFlags(int argc, char** argv) {
  if (argc > kArgsMax) {
    return dmalog::Status::InvalidArgument("more than " + std::to_string(kArgsMax) +
                                           " arguments; use `load` for bulk writes");
  }
  Args args;
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      args.positional.push_back(arg);
    } else if (arg == "--") {
      flags_done = true;  // Everything after is a positional argument.
    } else if (arg == "--help" || arg == "-help" || arg == "-h") {
      args.help = true;
    } else {
      dmalog::Result<int> used = ApplyFlag(arg, i + 1 < argc ? argv[i + 1] : nullptr);
      if (!used.ok()) return used.status();
      i += *used - 1;
    }
  }
  return args;
}

dmalog::cli::CliFlags CollectFlags() {
  dmalog::cli::CliFlags f;
  f.db = FLAGS_db;
  f.hex = FLAGS_hex;
  f.key_hex = FLAGS_key_hex;
  f.value_hex = FLAGS_value_hex;
  f.from = FLAGS_from;
  f.to = FLAGS_to;
  f.max_keys = FLAGS_max_keys;
  f.from_seq = FLAGS_from_seq;
  f.shard = FLAGS_shard;
  f.max_records = FLAGS_max_records;
  f.shards = FLAGS_shards;
  f.segment_size_bytes = FLAGS_segment_size_bytes;
  f.recovery_mode = FLAGS_recovery_mode;
  f.sync = FLAGS_sync;
  if (!gflags::GetCommandLineFlagInfoOrDie("create_if_missing").is_default) {
    f.create_if_missing = FLAGS_create_if_missing;
  }
  f.threads = FLAGS_threads;
  f.num = FLAGS_num;
  f.verify = FLAGS_verify;
  f.expected_state = FLAGS_expected_state;
  f.ops = FLAGS_ops;
  f.keys = FLAGS_keys;
  f.duration_s = FLAGS_duration_s;
  f.seed = FLAGS_seed;
  f.batch_percent = FLAGS_batch_percent;
  f.delete_percent = FLAGS_delete_percent;
  f.value_size_max = FLAGS_value_size_max;
  return f;
}

int UsageError(const dmalog::Status& s) {
  std::cerr << "dmalog: " << s.message() << "\n\n" << dmalog::cli::Usage();
  return dmalog::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  dmalog::Result<Args> args = ApplyFlags(argc, argv);
  if (!args.ok()) return UsageError(args.status());
  if (args->help) {
    std::cout << dmalog::cli::Usage();
    return dmalog::cli::kExitOk;
  }
  dmalog::Result<dmalog::cli::Command> cmd =
      dmalog::cli::ParseCommand(CollectFlags(), args->positional);
  if (!cmd.ok()) return UsageError(cmd.status());
  return dmalog::cli::RunCommand(*cmd, std::cin, std::cout, std::cerr);
}

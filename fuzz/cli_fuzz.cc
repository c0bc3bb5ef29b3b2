// Fuzzes the dmalog command line parser (tools/cli_command.h): ParseCommand
// over any flag values and positional arguments, and FromHex/ToHex. It must
// never crash; errors are InvalidArgument with a message; a parsed command
// carries exactly the key and value it was given; hex round-trips.
//
// Input: lines separated by '\n', read as a command line would be:
//   "--NAME=VALUE" sets string flag NAME (see kStringFlags), "--NAME" sets
//   bool flag NAME (kBoolFlags; "--noNAME" clears it), "--" ends the flags,
//   anything else is a positional argument (the verb, then its arguments).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "tools/cli_command.h"

namespace dmalog::fuzz {
namespace {

using cli::CliFlags;

struct StringFlag {
  const char* name;
  std::string CliFlags::*field;
};
constexpr StringFlag kStringFlags[] = {
    {"db", &CliFlags::db},
    {"from", &CliFlags::from},
    {"to", &CliFlags::to},
    {"max_keys", &CliFlags::max_keys},
    {"from_seq", &CliFlags::from_seq},
    {"shard", &CliFlags::shard},
    {"max_records", &CliFlags::max_records},
    {"shards", &CliFlags::shards},
    {"segment_size_bytes", &CliFlags::segment_size_bytes},
    {"recovery_mode", &CliFlags::recovery_mode},
    {"threads", &CliFlags::threads},
    {"num", &CliFlags::num},
    {"expected_state", &CliFlags::expected_state},
    {"ops", &CliFlags::ops},
    {"keys", &CliFlags::keys},
    {"duration_s", &CliFlags::duration_s},
    {"seed", &CliFlags::seed},
    {"batch_percent", &CliFlags::batch_percent},
    {"delete_percent", &CliFlags::delete_percent},
    {"value_size_max", &CliFlags::value_size_max},
};

struct BoolFlag {
  const char* name;
  bool CliFlags::*field;
};
constexpr BoolFlag kBoolFlags[] = {
    {"hex", &CliFlags::hex},   {"key_hex", &CliFlags::key_hex}, {"value_hex", &CliFlags::value_hex},
    {"sync", &CliFlags::sync}, {"verify", &CliFlags::verify},
};

// Lines read per input, at most (a command line is short).
constexpr size_t kLinesMax = 64;

bool SetFlag(std::string_view line, CliFlags& flags) {
  const std::string_view body = line.substr(2);
  const size_t eq = body.find('=');
  const std::string_view name = body.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? "" : body.substr(eq + 1);
  for (const StringFlag& f : kStringFlags) {
    if (name == f.name && eq != std::string_view::npos) {
      flags.*f.field = std::string(value);
      return true;
    }
  }
  if (name == "create_if_missing" || name == "nocreate_if_missing") {
    flags.create_if_missing = name == "create_if_missing";
    return true;
  }
  for (const BoolFlag& f : kBoolFlags) {
    if (name == f.name) {
      flags.*f.field = value != "false";
      return true;
    }
    if (name == std::string("no") + f.name) {
      flags.*f.field = false;
      return true;
    }
  }
  return false;
}

// Hex text equal ignoring case (FromHex accepts either case; ToHex prints upper).
bool SameHex(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

void CheckHex(const std::string& text) {
  const std::string hex = cli::ToHex(text);
  Result<std::string> back = cli::FromHex(hex, "fuzz");
  DMALOG_FUZZ_CHECK(back.ok() && *back == text, "FromHex(ToHex(x)) != x");
  Result<std::string> parsed = cli::FromHex(text, "fuzz");
  if (!parsed.ok()) {
    DMALOG_FUZZ_CHECK(parsed.status().IsInvalidArgument(), parsed.status().ToString());
    DMALOG_FUZZ_CHECK(parsed.status().message().find("fuzz") != std::string::npos, "names what");
    return;
  }
  DMALOG_FUZZ_CHECK(SameHex(cli::ToHex(*parsed), text), "ToHex(FromHex(t)) != t");
}

// The decoded argument matches the text given for it.
void CheckArg(const std::string& decoded, const std::string& given, bool hex) {
  if (hex) {
    DMALOG_FUZZ_CHECK(SameHex(cli::ToHex(decoded), given), "hex argument decoded wrongly");
  } else {
    DMALOG_FUZZ_CHECK(decoded == given, "raw argument changed");
  }
}

void CheckCommand(const CliFlags& flags, const std::vector<std::string>& args) {
  Result<cli::Command> cmd = cli::ParseCommand(flags, args);
  if (!cmd.ok()) {
    DMALOG_FUZZ_CHECK(cmd.status().IsInvalidArgument(), cmd.status().ToString());
    DMALOG_FUZZ_CHECK(!cmd.status().message().empty(), "an error without a message");
    return;
  }
  DMALOG_FUZZ_CHECK(!args.empty() && args.size() <= cli::kPositionalArgsMax, "arg count");
  DMALOG_FUZZ_CHECK(cmd->options.db_path == flags.db && !flags.db.empty(), "db path");
  DMALOG_FUZZ_CHECK(cmd->key_hex == (flags.hex || flags.key_hex), "key_hex");
  DMALOG_FUZZ_CHECK(cmd->value_hex == (flags.hex || flags.value_hex), "value_hex");
  DMALOG_FUZZ_CHECK(cmd->write_options.sync == flags.sync, "sync");
  DMALOG_FUZZ_CHECK(cmd->options.shard_count <= cli::kShardsMax, "shards");
  DMALOG_FUZZ_CHECK(cmd->tail.shard < cli::kShardsMax, "tail shard");
  DMALOG_FUZZ_CHECK(cmd->demo_threads >= 1 && cmd->demo_threads <= cli::kDemoThreadsMax,
                    "demo threads");
  const cli::Verb v = cmd->verb;
  if (v == cli::Verb::kPut || v == cli::Verb::kGet || v == cli::Verb::kDelete) {
    CheckArg(cmd->key, args[1], cmd->key_hex);
  }
  if (v == cli::Verb::kPut) CheckArg(cmd->value, args[2], cmd->value_hex);
  if (!flags.from.empty()) CheckArg(cmd->scan.from, flags.from, cmd->key_hex);
  if (!flags.to.empty()) CheckArg(cmd->scan.to, flags.to, cmd->key_hex);
  // Parsing is a pure function of its input.
  Result<cli::Command> again = cli::ParseCommand(flags, args);
  DMALOG_FUZZ_CHECK(again.ok() && again->key == cmd->key && again->value == cmd->value,
                    "parse is not deterministic");
}

}  // namespace
}  // namespace dmalog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmalog;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cli::CliFlags flags;
  std::vector<std::string> args;
  bool flags_done = false;
  size_t start = 0;
  for (size_t line = 0; line < fuzz::kLinesMax && start <= text.size(); ++line) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view l = text.substr(start, end - start);
    start = end + 1;
    fuzz::CheckHex(std::string(l));
    if (!flags_done && l == "--") {
      flags_done = true;
    } else if (!flags_done && l.size() > 2 && l.substr(0, 2) == "--" && fuzz::SetFlag(l, flags)) {
      continue;
    } else {
      args.emplace_back(l);
    }
  }
  fuzz::CheckCommand(flags, args);
  return 0;
}

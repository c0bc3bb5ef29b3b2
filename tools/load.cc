#include "tools/load.h"

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "tools/cli_verbs.h"

namespace dmalog::cli {
namespace {

// Puts in flight at once: enough to fill group commits, bounded memory.
constexpr uint64_t kLoadInFlightMax = 256;
// Lines one load reads at most (a named bound on the read loop).
constexpr uint64_t kLoadLinesMax = 1ull << 40;
// A progress line on stderr at most this often, and at least every so many lines.
constexpr auto kProgressInterval = std::chrono::seconds(1);
constexpr uint64_t kProgressLines = 100'000;
constexpr std::string_view kSeparator = " ==> ";

// The hex flags of `cmd`, as the resume hint must repeat them.
const char* HexFlags(const Command& cmd) {
  if (cmd.key_hex && cmd.value_hex) return " --hex";
  if (cmd.key_hex) return " --key_hex";
  return cmd.value_hex ? " --value_hex" : "";
}

// Counts acknowledgements from the engine's executor threads. Done() only
// takes a short lock and notifies, so it never blocks an executor for long.
class AckTracker {
 public:
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return in_flight_ < kLoadInFlightMax; });
    ++in_flight_;
  }
  void Done(const Status& s, uint64_t line) {
    std::lock_guard lock(mu_);
    assert(in_flight_ > 0);
    --in_flight_;
    if (s.ok()) {
      ++acked_;
    } else if (error_.ok() || line < error_line_) {
      error_ = s;
      error_line_ = line;
    }
    cv_.notify_all();
  }
  void WaitAll() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return in_flight_ == 0; });
  }
  uint64_t acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  bool failed() {
    std::lock_guard lock(mu_);
    return !error_.ok();
  }
  // The failure on the lowest line, and that line; call after WaitAll().
  std::pair<Status, uint64_t> error() {
    std::lock_guard lock(mu_);
    return {error_, error_line_};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t in_flight_ = 0;
  uint64_t acked_ = 0;
  Status error_;
  uint64_t error_line_ = 0;
};

struct Line {
  std::string key;
  std::string value;
};

// Splits `text` on its first " ==> " and decodes the halves.
Result<Line> ParseLine(const Command& cmd, const std::string& text) {
  const size_t sep = text.find(kSeparator);
  if (sep == std::string::npos) {
    return Status::InvalidArgument("no ' ==> ' between key and value");
  }
  Line line{text.substr(0, sep), text.substr(sep + kSeparator.size())};
  if (cmd.key_hex) {
    Result<std::string> key = FromHex(line.key, "key");
    if (!key.ok()) return key.status();
    line.key = std::move(*key);
  }
  if (cmd.value_hex) {
    Result<std::string> value = FromHex(line.value, "value");
    if (!value.ok()) return value.status();
    line.value = std::move(*value);
  }
  return line;
}

}  // namespace

int Load(const Command& cmd, Engine* db, std::istream& in, std::ostream& err) {
  AckTracker acks;
  std::string text;
  uint64_t lines_read = 0;
  Status malformed;
  auto last_progress = std::chrono::steady_clock::now();
  while (lines_read < kLoadLinesMax && !acks.failed() && std::getline(in, text)) {
    const uint64_t line_number = lines_read + 1;
    Result<Line> line = ParseLine(cmd, text);
    if (!line.ok()) {
      malformed = line.status();
      break;
    }
    lines_read = line_number;
    acks.Acquire();
    // PutAsync copies key and value before it returns.
    db->PutAsync(cmd.write_options, line->key, line->value,
                 [&acks, line_number](Status s) { acks.Done(s, line_number); });
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress >= kProgressInterval || lines_read % kProgressLines == 0) {
      err << "load: " << lines_read << " lines read, " << acks.acked() << " written\n";
      last_progress = now;
    }
  }
  acks.WaitAll();
  if (!malformed.ok()) {
    const uint64_t bad = lines_read + 1;
    err << "dmalog: load: line " << bad << ": " << malformed.message() << "; lines 1.."
        << lines_read << " are loaded, nothing after; fix line " << bad
        << " and load the rest with: tail -n +" << bad << " FILE | dmalog load" << HexFlags(cmd)
        << "\n";
    return kExitUsage;
  }
  if (acks.failed()) {
    auto [status, line] = acks.error();
    err << "dmalog: load: line " << line << ": " << status.ToString() << "; fix the cause and load "
        << "again from line " << line << " (tail -n +" << line << " FILE | dmalog load)\n";
    return ExitCodeFor(status) == kExitNotFound ? kExitError : ExitCodeFor(status);
  }
  if (in.bad()) {
    err << "dmalog: load: reading stdin failed after line " << lines_read
        << "; check the input pipe and load again from line " << lines_read + 1 << "\n";
    return kExitError;
  }
  assert(acks.acked() == lines_read);
  if (!cmd.write_options.sync) {
    // --sync=false acknowledged each put once queued: make them all durable
    // before the exit status says so.
    const Status s = db->Sync();
    if (!s.ok()) {
      err << "dmalog: load: making the " << lines_read
          << " records durable failed: " << s.ToString() << "; fix the cause and load again\n";
      return ExitCodeFor(s) == kExitNotFound ? kExitError : ExitCodeFor(s);
    }
  }
  err << "load: " << lines_read << " records written to " << cmd.options.db_path << "\n";
  return kExitOk;
}

}  // namespace dmalog::cli

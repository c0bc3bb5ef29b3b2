// `dmalog demo`: the README's first command. Several writer threads write
// durable records, read them back, scan them, close, reopen (recovery) and
// verify every key again, then report throughput, latency and where and how
// the data was written.
#pragma once

#include <iostream>

#include "tools/cli_command.h"

namespace dmalog::cli {

// Keys are "demo:tTT:NNNNNNNN" and are overwritten by every run (keys left by
// an earlier, larger run are deleted), so the demo can run again and again on
// the same directory. Returns kExitOk, or kExitError when an operation or a
// verification fails (the failure is on `err`).
int RunDemo(const Command& cmd, std::ostream& out, std::ostream& err);

}  // namespace dmalog::cli

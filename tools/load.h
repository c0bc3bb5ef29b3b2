// `dmalog load`: 'KEY ==> VALUE' lines from a stream into the database.
#pragma once

#include <iostream>

#include "dmalog/engine.h"
#include "tools/cli_command.h"

namespace dmalog::cli {

// Writes every line of `in` into `db` (borrowed) with a bounded number of
// asynchronous puts in flight and waits for all of them. Returns kExitOk only
// when every line read was acknowledged (durable when cmd.write_options.sync,
// the default; the caller's Engine::Close flushes the rest otherwise). A
// malformed line stops the load: the lines before it are written, nothing
// after it, and the error names its line number (kExitUsage). Progress and
// errors go to `err`.
int Load(const Command& cmd, Engine* db, std::istream& in, std::ostream& err);

}  // namespace dmalog::cli

// Runs a parsed `dmalog` command against the database and reports on the
// given streams. Returns the process exit status (kExit* in cli_command.h).
#pragma once

#include <iostream>
#include <memory>

#include "dmalog/engine.h"
#include "tools/cli_command.h"

namespace dmalog::cli {

// `in` is read only by `load`; `out` gets the verb's results, `err` errors and
// progress. The streams are borrowed for the duration of the call.
int RunCommand(const Command& cmd, std::istream& in, std::ostream& out, std::ostream& err);

// The exit status for an engine error: 1 NotFound, 2 InvalidArgument, 3 else.
int ExitCodeFor(const Status& status);

// Opens cmd.options.db_path, explaining a missing directory in CLI terms.
Result<std::unique_ptr<Engine>> OpenForCli(const Command& cmd);

// Closes `db` (borrowed) and turns a failed Close into an error on `err`:
// returns `exit_code` if Close succeeded, kExitError otherwise.
int CloseAndExit(Engine* db, int exit_code, std::ostream& err);

}  // namespace dmalog::cli

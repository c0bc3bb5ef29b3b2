// EngineHooks: seams for tests and tools that are not part of the public
// API (they expose io/ types). The fault-injection tests wrap each shard's
// io backend in an io::FaultBackend through wrap_backend.
#pragma once

#include <functional>
#include <memory>

#include "dmalog/engine.h"
#include "io/backend.h"

namespace dmalog::engine {

struct EngineHooks {
  // Called once per shard, on the shard's executor thread, with the backend
  // it opened; returns the backend the shard will use.
  std::function<std::unique_ptr<io::Backend>(std::unique_ptr<io::Backend>)> wrap_backend;
  // A wrapped backend turns off blocking gets' reads on the calling thread
  // (Options::read_on_calling_thread), which the wrapper would not see;
  // true keeps them, for tests of that path's failure handling.
  bool keep_reads_on_calling_thread = false;
};

Result<std::unique_ptr<Engine>> OpenEngine(const Options& options, const EngineHooks& hooks);

}  // namespace dmalog::engine

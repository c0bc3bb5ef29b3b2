// Requests that reach a shard as cross-shard messages (scheduler/message.h)
// rather than as coroutines: the allocation-free path for the blocking and
// asynchronous API. The shard serves a request synchronously when it can
// (a write that fits the filling batch, a get answered from memory); a
// write that must wait for buffer room or a new segment joins the shard's
// stalled queue, as does every request behind it, and a read from disk runs
// as a coroutine.
//
// Whoever posts a request owns it and keeps it alive until `complete` runs;
// `complete` runs exactly once, on the shard's executor thread (or, when the
// engine stops first, on the thread tearing it down).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmalog/status.h"
#include "engine/format.h"
#include "engine/log_writer.h"

namespace dmalog::engine {

class Shard;
struct WriteRequest;
struct GetRequest;

struct OrderedRequest;

// A request's place in its shard's stalled queue (Shard::Submit): exactly
// one of `write`, `get` and `ordered` is set while it waits there.
struct StalledLink {
  StalledLink* next = nullptr;
  WriteRequest* write = nullptr;
  GetRequest* get = nullptr;
  OrderedRequest* ordered = nullptr;
};

struct WriteRequest {
  Shard* shard = nullptr;
  format::RecordType type = format::kPutType;
  std::string_view key;    // Borrowed until `complete` runs.
  std::string_view value;  // For a batch, its payload.
  uint32_t entries = 1;
  bool sync = true;
  // The caller was told OK before the shard took the write (a blocking
  // sync = false call): if the shard then fails it, the write is lost, and
  // the shard refuses later writes (LogWriter::RefuseAppends).
  bool acknowledged = false;
  Status status;
  void (*complete)(WriteRequest* request) = nullptr;
  DurableWaiter durable;  // Used by the shard.
  StalledLink stalled;    // Used by the shard.
};

struct GetRequest {
  Shard* shard = nullptr;
  std::string_view key;  // Borrowed until `complete` runs.
  // Set before `complete` runs. Starts as a value, not an error: an error
  // Status allocates, and a get would pay for it on every call.
  Result<std::string> result{std::string()};
  void (*complete)(GetRequest* request) = nullptr;
  StalledLink stalled;  // Used by the shard.
};

// A request that must take effect at its place in the shard's order (a
// scan's or a tail's snapshot) and does its slow part in a coroutine:
// `start` runs on the shard's executor, synchronously, once every request
// queued before it has been served, and takes its own ownership from there.
struct OrderedRequest {
  Shard* shard = nullptr;
  void (*start)(OrderedRequest* request) = nullptr;
  StalledLink stalled;  // Used by the shard.
};

}  // namespace dmalog::engine

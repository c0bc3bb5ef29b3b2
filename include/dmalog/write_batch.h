// WriteBatch: puts and deletes applied atomically: after a crash, all of
// the batch or none of it.
//
// A batch is written as one record in one shard's log, so all of its keys
// must map to the same shard. Engine::Write rejects a batch whose keys span
// shards (InvalidArgument naming two keys). To keep related keys together,
// give them a hash tag: only the part inside the first "{...}" of a key is
// hashed, so "user:{42}:name" and "user:{42}:email" always share a shard.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmalog/status.h"

namespace dmalog {

class WriteBatch {
 public:
  WriteBatch();

  // InvalidArgument naming the limit when the key, the value, the entry
  // count or the batch's size is over its limit (see docs/format.md);
  // the batch is unchanged then.
  Status Put(std::string_view key, std::string_view value);
  Status Delete(std::string_view key);
  void Clear();

  uint32_t count() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // The encoded batch payload (docs/format.md, "Batches").
  std::string_view payload() const noexcept { return payload_; }
  // The first key added (for shard routing), empty if none.
  std::string_view first_key() const noexcept;

 private:
  Status Add(uint8_t type, std::string_view key, std::string_view value);
  std::string payload_;
  uint32_t count_ = 0;
  uint32_t first_key_offset_ = 0;
  uint16_t first_key_bytes_ = 0;
};

}  // namespace dmalog

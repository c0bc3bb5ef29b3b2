#include "dmalog/write_batch.h"

#include <cstring>

#include "engine/format.h"
#include "engine/record.h"

namespace dmalog {
namespace {
void Append16(std::string& out, uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); }
void Append32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
}  // namespace

WriteBatch::WriteBatch() { Clear(); }

void WriteBatch::Clear() {
  payload_.assign(format::kBatchCountBytes, '\0');
  count_ = 0;
  first_key_offset_ = 0;
  first_key_bytes_ = 0;
}

Status WriteBatch::Put(std::string_view key, std::string_view value) {
  return Add(format::kPutType, key, value);
}

Status WriteBatch::Delete(std::string_view key) { return Add(format::kDeleteType, key, {}); }

std::string_view WriteBatch::first_key() const noexcept {
  if (count_ == 0) return {};
  return std::string_view(payload_).substr(first_key_offset_, first_key_bytes_);
}

Status WriteBatch::Add(uint8_t type, std::string_view key, std::string_view value) {
  DMALOG_RETURN_IF_ERROR(engine::CheckKeyValueLimits(key, value));
  if (count_ + 1 > format::kBatchEntriesMax) {
    return Status::InvalidArgument(
        "batch has " + std::to_string(count_) +
        " entries; the limit is kBatchEntriesMax = " + std::to_string(format::kBatchEntriesMax));
  }
  const size_t entry_bytes = format::kBatchEntryHeaderBytes + key.size() + value.size();
  if (payload_.size() + entry_bytes > format::kBatchBytesMax) {
    return Status::InvalidArgument(
        "batch would be " + std::to_string(payload_.size() + entry_bytes) +
        " bytes; the limit is kBatchBytesMax = " + std::to_string(format::kBatchBytesMax) +
        " bytes: split it into several batches");
  }
  if (count_ == 0) {
    first_key_offset_ = static_cast<uint32_t>(payload_.size() + format::kBatchEntryHeaderBytes);
    first_key_bytes_ = static_cast<uint16_t>(key.size());
  }
  payload_.push_back(static_cast<char>(type));
  Append16(payload_, static_cast<uint16_t>(key.size()));
  Append32(payload_, static_cast<uint32_t>(value.size()));
  payload_.append(key);
  payload_.append(value);
  ++count_;
  const uint32_t count = count_;
  std::memcpy(payload_.data(), &count, sizeof(count));
  return Status::OK();
}

}  // namespace dmalog

// Status and Result<T>: how every dmalog call reports success or failure.
//
// A Status costs one pointer when it is OK (the LevelDB model): the error
// details live in a heap block that exists only on failure. Both types are
// [[nodiscard]]; dropping an error must be explicit and greppable, through
// Status::IgnoreError().
//
// No exception crosses the dmalog API. Errors carry a code, the errno that
// caused them (0 when none did) and a message that names the operation, the
// file and what the user can do about it.
#pragma once

#include <cassert>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace dmalog {

class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kNotFound,
    kCorruption,
    kInvalidArgument,
    kIOError,
    kNoSpace,      // ENOSPC: the disk is full.
    kBusy,         // The resource is held by someone else (a lock).
    kUnsupported,  // The kernel or filesystem lacks a needed feature.
    kAborted,      // The operation was cancelled or the owner shut down.
    kReadOnly,     // A shard refuses writes after an unrecoverable error.
  };

  Status() noexcept = default;
  ~Status() = default;
  Status(const Status& other) : rep_(other.rep_ ? new Rep(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_.reset(other.rep_ ? new Rep(*other.rep_) : nullptr);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, 0, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, 0, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, 0, msg);
  }
  static Status IOError(std::string_view msg, int sys_errno = 0) {
    return Status(Code::kIOError, sys_errno, msg);
  }
  static Status NoSpace(std::string_view msg, int sys_errno = 0) {
    return Status(Code::kNoSpace, sys_errno, msg);
  }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, 0, msg); }
  static Status Unsupported(std::string_view msg, int sys_errno = 0) {
    return Status(Code::kUnsupported, sys_errno, msg);
  }
  static Status Aborted(std::string_view msg) { return Status(Code::kAborted, 0, msg); }
  static Status ReadOnly(std::string_view msg) { return Status(Code::kReadOnly, 0, msg); }
  static Status FromCode(Code code, int sys_errno, std::string_view msg) {
    return code == Code::kOk ? Status() : Status(code, sys_errno, msg);
  }

  bool ok() const noexcept { return rep_ == nullptr; }
  Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  // The errno behind the failure, or 0.
  int sys_errno() const noexcept { return rep_ ? rep_->sys_errno : 0; }
  std::string_view message() const noexcept {
    return rep_ ? std::string_view(rep_->message) : std::string_view();
  }
  bool IsNotFound() const noexcept { return code() == Code::kNotFound; }
  bool IsCorruption() const noexcept { return code() == Code::kCorruption; }
  bool IsInvalidArgument() const noexcept { return code() == Code::kInvalidArgument; }
  bool IsIOError() const noexcept { return code() == Code::kIOError; }
  bool IsNoSpace() const noexcept { return code() == Code::kNoSpace; }
  bool IsBusy() const noexcept { return code() == Code::kBusy; }
  bool IsUnsupported() const noexcept { return code() == Code::kUnsupported; }
  bool IsAborted() const noexcept { return code() == Code::kAborted; }
  bool IsReadOnly() const noexcept { return code() == Code::kReadOnly; }

  // "IO error: write /db/0/000001.seg at offset 4096: EIO (Input/output error)".
  std::string ToString() const {
    if (ok()) return "OK";
    std::string out = CodeName(rep_->code);
    out += ": ";
    out += rep_->message;
    return out;
  }
  static const char* CodeName(Code code) noexcept {
    switch (code) {
      case Code::kOk:
        return "OK";
      case Code::kNotFound:
        return "NotFound";
      case Code::kCorruption:
        return "Corruption";
      case Code::kInvalidArgument:
        return "Invalid argument";
      case Code::kIOError:
        return "IO error";
      case Code::kNoSpace:
        return "Disk full";
      case Code::kBusy:
        return "Busy";
      case Code::kUnsupported:
        return "Not supported";
      case Code::kAborted:
        return "Aborted";
      case Code::kReadOnly:
        return "Read-only";
    }
    return "Unknown";
  }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const {
    if (ok()) return Status();
    std::string msg(context);
    msg += ": ";
    msg += rep_->message;
    return Status(rep_->code, rep_->sys_errno, msg);
  }

  // The one sanctioned way to drop an error. Grep for it.
  void IgnoreError() const noexcept {}

 private:
  struct Rep {
    Code code;
    int sys_errno;
    std::string message;
  };
  Status(Code code, int sys_errno, std::string_view msg)
      : rep_(new Rep{code, sys_errno, std::string(msg)}) {}

  std::unique_ptr<Rep> rep_;
};

static_assert(sizeof(Status) == sizeof(void*), "an OK Status costs one pointer");

// Result<T>: either a value or a non-OK Status. Never holds an OK status
// without a value.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "use Status directly");
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

 public:
  // Implicit from a value or an error, so `return value;` and
  // `return Status::IOError(...)` both read naturally.
  Result(T value) : has_value_(true) { new (&value_) T(std::move(value)); }  // NOLINT
  Result(Status status) : status_(std::move(status)) {                       // NOLINT
    assert(!status_.ok() && "a Result built from a Status must hold an error");
    if (status_.ok()) status_ = Status::InvalidArgument("Result built from an OK Status");
  }
  Result(const Result& other) : status_(other.status_), has_value_(other.has_value_) {
    if (has_value_) new (&value_) T(other.value_);
  }
  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : status_(std::move(other.status_)), has_value_(other.has_value_) {
    if (has_value_) new (&value_) T(std::move(other.value_));
  }
  Result& operator=(Result other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    Destroy();
    status_ = std::move(other.status_);
    has_value_ = other.has_value_;
    if (has_value_) new (&value_) T(std::move(other.value_));
    return *this;
  }
  ~Result() { Destroy(); }

  bool ok() const noexcept { return has_value_; }
  // OK when a value is present.
  const Status& status() const& noexcept { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    assert(has_value_);
    return value_;
  }
  const T& value() const& {
    assert(has_value_);
    return value_;
  }
  T&& value() && {
    assert(has_value_);
    return std::move(value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Destroy() noexcept {
    if (has_value_) value_.~T();
    has_value_ = false;
  }

  Status status_;
  union {
    T value_;
  };
  bool has_value_ = false;
};

// Evaluates `expr` (a Status); returns it from the current function on error.
#define DMALOG_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::dmalog::Status _dmalog_st = (expr);    \
    if (!_dmalog_st.ok()) return _dmalog_st; \
  } while (0)

}  // namespace dmalog

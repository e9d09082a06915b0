// Status and Result: how every layer reports failure (the engine, state, config, warehouse, replication, sync
// and the programs), so an error crosses a module boundary as a value with no translation.
//
// Errors are values across module boundaries; no layer lets an exception escape its public API.
// A Status carries a code (for programs) and a message (for people) that names the thing that is wrong:
// the file, the page, the table.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rocky::base {

// [[nodiscard]]: a Status dropped on the floor is an error nobody hears of; a caller that means to ignore one
// says so with a (void) cast and a comment why.
class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kNotFound,         // a table or file that does not exist
    kCorruption,       // bytes on disk fail a checksum or a structural check
    kInvalidArgument,  // the caller passed something the engine cannot accept
    kIOError,          // the operating system refused a read, write, sync or lock
    kNoSpace,          // the disk is full (ENOSPC/EDQUOT); nothing committed was lost
    kBusy,             // locked by another writer (process or thread)
    kNotSupported,     // e.g. a file written by a newer format version
    kPoisoned,         // an earlier I/O error latched the database read-only until reopen
    // The two below are not produced by the engine; the sync layer decides retries on the code, and these two
    // need a different decision than kIOError.
    kTimedOut,          // a deadline passed before the operation finished (worth retrying while time remains)
    kPermissionDenied,  // credentials refused or access denied: retrying with the same credentials won't help
    // The operation failed at a point where whether it took effect cannot be known now: a Commit whose slot
    // write or sync failed and whose slot could not be invalidated either (the commit may have been kept;
    // the next Database::Open settles it and says which in its OpenReport).
    kOutcomeUnknown,
  };

  Status() = default;  // OK

  static Status OK() { return {}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status Poisoned(std::string msg) { return {Code::kPoisoned, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {Code::kTimedOut, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) { return {Code::kPermissionDenied, std::move(msg)}; }
  static Status OutcomeUnknown(std::string msg) { return {Code::kOutcomeUnknown, std::move(msg)}; }
  // The same code with another message (e.g. one scrubbed of a secret). Requires code != kOk.
  static Status FromCode(Code code, std::string msg) {
    assert(code != Code::kOk);
    return {code, std::move(msg)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }
  bool IsOutcomeUnknown() const { return code_ == Code::kOutcomeUnknown; }
  const std::string& message() const { return message_; }

  // "Corruption: page 17 of table 'watermarks': checksum mismatch".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` ("opening /x/y: ...").
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

std::string_view CodeName(Status::Code code);

// Result<T> holds either a value or a non-OK Status. Requires: constructed from a non-OK Status when it
// carries an error (constructing from Status::OK() is a programming error and asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // Requires ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  // The value, or `fallback` when this holds an error.
  T value_or(T fallback) const& { return ok() ? std::get<T>(v_) : std::move(fallback); }

  // OK when a value is held.
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rocky::base

// Propagates a non-OK Status from an expression returning Status.
#define ROCKY_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::rocky::base::Status _rocky_s = (expr); \
    if (!_rocky_s.ok()) return _rocky_s;     \
  } while (0)

#define ROCKY_CONCAT_INNER(a, b) a##b
#define ROCKY_CONCAT(a, b) ROCKY_CONCAT_INNER(a, b)
// Declares `lhs` from a Result-returning expression, or returns its Status.
#define ROCKY_ASSIGN_OR_RETURN(lhs, expr) \
  ROCKY_ASSIGN_OR_RETURN_IMPL(ROCKY_CONCAT(_rocky_r_, __LINE__), lhs, expr)
#define ROCKY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// Status: the result of a call across the plugin boundary. Exceptions never cross the
// boundary (the base classes in plugin.hpp catch and convert them), so every interface
// method that can fail returns a Status or a Result<T>.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace novacron::sdk {

// Error codes map onto the host's API errors (docs/api.md); keep values stable.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,     // the caller's input is wrong (bad config key, bad request)
  kNotFound = 2,            // the named object does not exist
  kAlreadyExists = 3,       // an object with that name exists
  kFailedPrecondition = 4,  // the system is not in a state that allows the call
  kUnavailable = 5,         // a dependency is down; retrying later may work
  kPermissionDenied = 6,    // authenticated, but not allowed
  kUnauthenticated = 7,     // credentials missing or wrong
  kResourceExhausted = 8,   // out of capacity, quota or memory
  kCancelled = 9,
  kDeadlineExceeded = 10,
  kUnimplemented = 11,  // the plugin does not support this call
  kInternal = 12,       // a bug; the message says where
};

const char* status_code_name(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == StatusCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }
inline Status internal_error(std::string message) { return {StatusCode::kInternal, std::move(message)}; }
inline Status unavailable(std::string message) { return {StatusCode::kUnavailable, std::move(message)}; }

// A value or a non-OK Status. Deliberately small: the SDK depends on the standard library
// only, so third-party plugins need nothing else to build.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.is_ok()) status_ = internal_error("Result constructed from an OK status");
  }

  bool is_ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const noexcept { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

inline const char* status_code_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kPermissionDenied:
      return "permission_denied";
    case StatusCode::kUnauthenticated:
      return "unauthenticated";
    case StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case StatusCode::kUnimplemented:
      return "unimplemented";
    case StatusCode::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace novacron::sdk

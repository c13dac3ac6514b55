// The host's result type for expected failures (bad input, refused plugins, I/O errors).
// Exceptions are kept for bugs and resource exhaustion (see docs/architecture.md).
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace novacron {

struct Error {
  // Stable, machine-readable identifier, e.g. "sha256_mismatch" or "config_invalid".
  std::string code;
  // One human sentence: what and where, e.g. "/plugins/load/2/id: expected a string".
  std::string message;
};

template <typename T>
using Expected = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(std::string code, std::string message) {
  return tl::unexpected<Error>(Error{std::move(code), std::move(message)});
}

// Convenience for Expected<void>.
inline Expected<void> ok() { return {}; }

}  // namespace novacron

// The transport's error codes (docs/transport-protocol.md, "Errors"): carried in ERROR,
// RESULT and CANCEL frames and used as the `error_code` of a transfer. "Final" codes are
// not retried by the sender; the others are (lost connections, timeouts, busy peers).
#pragma once

#include <cstdint>
#include <string>

namespace novacron::transport {

enum class ErrorCode : std::uint16_t {
  kOk = 0,
  kMalformed = 1,
  kUnsupportedVersion = 2,
  kUnexpectedFrame = 3,
  kFrameTooLarge = 4,
  kUnknownPeer = 5,
  kNotPermitted = 6,
  kBusy = 7,
  kNoSpace = 8,
  kIo = 9,
  kVerificationFailed = 10,
  kSourceChanged = 11,
  kCancelled = 12,
  kNotReady = 13,
  kTimeout = 14,
  kInternal = 15,
  kIdConflict = 16,
  kBaseChanged = 17,
  kTargetRefused = 18,
};

// "malformed", "unsupported_version", ...; "error_<n>" for a code this version does not know.
std::string error_code_name(std::uint16_t code);

// Whether a sender gives up on this code instead of retrying.
bool error_is_final(std::uint16_t code);

}  // namespace novacron::transport

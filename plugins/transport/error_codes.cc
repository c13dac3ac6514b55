#include "error_codes.h"

#include <array>
#include <string_view>

namespace novacron::transport {

namespace {
constexpr std::array<std::string_view, 19> kNames = {"ok",
                                                     "malformed",
                                                     "unsupported_version",
                                                     "unexpected_frame",
                                                     "frame_too_large",
                                                     "unknown_peer",
                                                     "not_permitted",
                                                     "busy",
                                                     "no_space",
                                                     "io",
                                                     "verification_failed",
                                                     "source_changed",
                                                     "cancelled",
                                                     "not_ready",
                                                     "timeout",
                                                     "internal",
                                                     "id_conflict",
                                                     "base_changed",
                                                     "target_refused"};
}  // namespace

std::string error_code_name(std::uint16_t code) {
  if (code < kNames.size()) return std::string(kNames[code]);
  return "error_" + std::to_string(code);
}

bool error_is_final(std::uint16_t code) {
  switch (static_cast<ErrorCode>(code)) {
    case ErrorCode::kBusy:
    case ErrorCode::kIo:
    case ErrorCode::kNotReady:
    case ErrorCode::kTimeout:
    case ErrorCode::kSourceChanged:  // once: the sender counts these retries itself
    case ErrorCode::kBaseChanged:
      return false;
    default:
      return true;
  }
}

}  // namespace novacron::transport

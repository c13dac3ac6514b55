// What the sender and receiver sessions share: how a session ends, and small helpers for
// frames that may arrive in any state (ERROR, CANCEL, PING).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "error_codes.h"
#include "frame_connection.h"
#include "wire_format.h"

namespace novacron::transport {

// How long a session waits for the peer's next frame before giving up (timeout).
inline constexpr std::chrono::milliseconds kIdleTimeout{60000};

struct SessionOutcome {
  std::string error_code;  // "" = success; else a protocol or client-side code name
  std::string message;
  bool final = true;   // the sender should not retry
  std::string digest;  // "xxh3-128:<hex>" on success

  bool ok() const { return error_code.empty(); }
  static SessionOutcome failure(std::string code, std::string message, bool final) {
    return SessionOutcome{std::move(code), std::move(message), final, {}};
  }
  static SessionOutcome protocol(ErrorCode code, std::string message) {
    const auto c = static_cast<std::uint16_t>(code);
    return failure(error_code_name(c), std::move(message), error_is_final(c));
  }
};

std::string hex(const Hash128& h);
std::string digest_text(const Hash128& h);

// Sends ERROR{code, message} and closes the connection (the reason for the peer's log).
void send_error_and_close(FrameConnection& conn, ErrorCode code, const std::string& message, std::uint64_t context = 0);

// A frame that was not expected: turns ERROR and CANCEL from the peer into an outcome, and
// anything else into unexpected_frame.
SessionOutcome outcome_of_unexpected(FrameConnection& conn, const Frame& frame, const char* waiting_for);

// The client's side of HELLO / HELLO_OK; nullopt when the peer accepted.
std::optional<SessionOutcome> client_hello(FrameConnection& conn, const std::string& local_node, std::uint8_t purpose);

// The outcome of a connection that closed while a frame was awaited.
SessionOutcome outcome_of_closed(const Received& r, const char* waiting_for);

// The peer's next frame (PINGs answered on the way), or the outcome of its absence.
struct Awaited {
  std::optional<Frame> frame;
  SessionOutcome outcome;
};
Awaited await_frame(FrameConnection& conn, const char* what);

// The connection refused a frame: the peer's reason is often still queued (an ERROR that
// closed it, a failed RESULT), and it says more than "connection lost".
SessionOutcome outcome_of_refused_send(FrameConnection& conn, const char* what);

// The receiver's end of a failed transfer: RESULT{code, message}, then close.
SessionOutcome send_failed_result(FrameConnection& conn, ErrorCode code, const std::string& message);

// Sends CANCEL{code, message}, closes, and returns the failure (`final`: not retried).
SessionOutcome send_cancel(FrameConnection& conn, ErrorCode code, const std::string& message, bool final);

// The sender's end of a transfer after END: waits for RESULT (frames such as ACK or HASHES
// go to `on_side_frame`), closes, and compares the receiver's digest with `digest`.
SessionOutcome await_result(FrameConnection& conn, const Hash128& digest,
                            const std::function<std::optional<SessionOutcome>(const Frame&)>& on_side_frame,
                            const std::function<void()>& after_close);

}  // namespace novacron::transport

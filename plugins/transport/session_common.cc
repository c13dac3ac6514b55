#include "session_common.h"

#include "frames.h"
#include "transfer_frames.h"

namespace novacron::transport {

std::string hex(const Hash128& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (const std::uint8_t b : h) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string digest_text(const Hash128& h) { return "xxh3-128:" + hex(h); }

void send_error_and_close(FrameConnection& conn, ErrorCode code, const std::string& message, std::uint64_t context) {
  ErrorFrame e;
  e.code = static_cast<std::uint16_t>(code);
  e.context = context;
  e.message = message;
  conn.send(FrameType::kError, 0, e.encode());
  conn.close(std::chrono::seconds(2));
}

SessionOutcome outcome_of_unexpected(FrameConnection& conn, const Frame& frame, const char* waiting_for) {
  if (frame.header.type == FrameType::kError) {
    if (auto e = ErrorFrame::decode(frame.payload)) {
      return SessionOutcome::failure(error_code_name(e->code), "the peer reported: " + e->message,
                                     error_is_final(e->code));
    }
  }
  if (frame.header.type == FrameType::kCancel) {
    if (auto c = Cancel::decode(frame.payload)) {
      return SessionOutcome::failure("cancelled", "the peer cancelled: " + c->message, true);
    }
  }
  const std::string message =
      std::string(frame_type_name(frame.header.type)) + " frame while waiting for " + waiting_for;
  send_error_and_close(conn, ErrorCode::kUnexpectedFrame, message);
  return SessionOutcome::protocol(ErrorCode::kUnexpectedFrame, message);
}

std::optional<SessionOutcome> client_hello(FrameConnection& conn, const std::string& local_node, std::uint8_t purpose) {
  Hello hello;
  hello.caps = kCapZstd | (purpose == static_cast<std::uint8_t>(Purpose::kTunnel) ? kCapTunnel : 0);
  hello.max_frame = kMaxFrame;
  hello.purpose = static_cast<Purpose>(purpose);
  hello.node = local_node;
  conn.send(FrameType::kHello, 0, hello.encode());
  while (true) {
    Received r = conn.receive(kIdleTimeout);
    if (r.status != Received::Status::kFrame) return outcome_of_closed(r, "HELLO_OK");
    if (r.frame.header.type == FrameType::kPing) continue;
    if (r.frame.header.type != FrameType::kHelloOk) return outcome_of_unexpected(conn, r.frame, "HELLO_OK");
    const auto ok = HelloOk::decode(r.frame.payload);
    if (!ok || ok->version != kProtocolVersion) {
      send_error_and_close(conn, ErrorCode::kMalformed, "bad HELLO_OK");
      return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad HELLO_OK");
    }
    return std::nullopt;
  }
}

SessionOutcome outcome_of_closed(const Received& r, const char* waiting_for) {
  if (r.status == Received::Status::kTimeout) {
    return SessionOutcome::protocol(ErrorCode::kTimeout,
                                    std::string("no frame from the peer while waiting for ") + waiting_for);
  }
  if (r.certificate_refused) {
    return SessionOutcome::failure("untrusted_certificate", "the peer refused this node's certificate: " + r.reason,
                                   true);
  }
  return SessionOutcome::failure("connection_lost", r.reason + " (waiting for " + waiting_for + ")", false);
}

}  // namespace novacron::transport

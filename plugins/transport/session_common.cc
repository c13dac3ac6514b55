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
  hello.caps = kCapZstd | kCapTrees | (purpose == static_cast<std::uint8_t>(Purpose::kTunnel) ? kCapTunnel : 0);
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

Awaited await_frame(FrameConnection& conn, const char* what) {
  while (true) {
    Received r = conn.receive(kIdleTimeout);
    if (r.status != Received::Status::kFrame) return {std::nullopt, outcome_of_closed(r, what)};
    if (r.frame.header.type == FrameType::kPing) {
      conn.send(FrameType::kPong, 0, r.frame.payload);
      continue;
    }
    return {std::move(r.frame), {}};
  }
}

SessionOutcome outcome_of_refused_send(FrameConnection& conn, const char* what) {
  while (true) {
    Received r = conn.receive(std::chrono::milliseconds(0));
    if (r.status != Received::Status::kFrame) return outcome_of_closed(r, what);
    const FrameType t = r.frame.header.type;
    if (t == FrameType::kResult) {
      if (const auto res = Result::decode(r.frame.payload); res && res->code != 0) {
        return SessionOutcome::failure(error_code_name(res->code), "the receiver reported: " + res->message,
                                       error_is_final(res->code));
      }
      continue;
    }
    if (t == FrameType::kError || t == FrameType::kCancel) return outcome_of_unexpected(conn, r.frame, what);
  }
}

SessionOutcome send_failed_result(FrameConnection& conn, ErrorCode code, const std::string& message) {
  Result res;
  res.code = static_cast<std::uint16_t>(code);
  res.message = message;
  conn.send(FrameType::kResult, 0, res.encode());
  conn.close(std::chrono::seconds(2));
  return SessionOutcome::protocol(code, message);
}

SessionOutcome send_cancel(FrameConnection& conn, ErrorCode code, const std::string& message, bool final) {
  Cancel c;
  c.code = static_cast<std::uint16_t>(code);
  c.message = message;
  conn.send(FrameType::kCancel, 0, c.encode());
  conn.close(std::chrono::seconds(2));
  return SessionOutcome::failure(error_code_name(c.code), message, final);
}

SessionOutcome await_result(FrameConnection& conn, const Hash128& digest,
                            const std::function<std::optional<SessionOutcome>(const Frame&)>& on_side_frame,
                            const std::function<void()>& after_close) {
  while (true) {
    auto r = await_frame(conn, "RESULT");
    if (!r.frame) return r.outcome;
    if (r.frame->header.type != FrameType::kResult) {
      if (auto failed = on_side_frame(*r.frame)) return *failed;
      continue;
    }
    const auto res = Result::decode(r.frame->payload);
    conn.close(std::chrono::seconds(2));
    after_close();
    if (!res) return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad RESULT");
    if (res->code != 0) {
      return SessionOutcome::failure(error_code_name(res->code), "the receiver reported: " + res->message,
                                     error_is_final(res->code));
    }
    if (res->receiver_digest != digest) {
      return SessionOutcome::protocol(ErrorCode::kVerificationFailed,
                                      "the receiver's digest differs from the sender's");
    }
    SessionOutcome ok;
    ok.digest = digest_text(digest);
    return ok;
  }
}

}  // namespace novacron::transport

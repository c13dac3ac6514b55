// A small HTTP/1.1 server on the host's io_context (Boost.Beast). Beast stays inside
// http_server.cc; handlers see plain request/response structs. The REST API (routes, auth,
// operations) builds on this in host/api.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/common/error.h"

namespace novacron {

class ExecutorPools;

// A WebSocket connection the server upgraded for a handler (GET /v1/events). send() may be
// called from any thread; messages are queued (bounded) and written in order. When the peer
// is too slow and the queue (4096 messages, plus allowed bursts) fills, the connection is
// closed rather than grown without bound.
class WebSocketChannel {
 public:
  virtual ~WebSocketChannel() = default;
  // Queues a text message; false when the channel is closed (or has just closed because its
  // queue was full).
  virtual bool send(std::string text) = 0;
  // Raises the queue bound by `messages`, for the rest of the connection, for a burst the
  // handler sends at once (a replay of retained events), so that a burst larger than the
  // bound is not taken for a slow peer. The bound stays finite: callers add what they send.
  virtual void allow_burst(std::size_t messages) = 0;
  virtual void close(const std::string& reason) = 0;
  virtual bool is_open() const = 0;
  // Called once, on any thread, when the connection ends.
  virtual void on_close(std::function<void()> fn) = 0;
};

struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_address;
  // Identity of a TLS client certificate that verified against the listener's client CA
  // (mutual TLS); empty otherwise.
  std::string tls_peer_subject;
  std::vector<std::string> tls_peer_names;
  // Set when the request could not be read (malformed, too large): the handler answers with
  // this status and code, so that such answers get request ids, metrics and logs too.
  bool websocket_upgrade = false;  // a WebSocket handshake request
  int protocol_error_status = 0;
  std::string protocol_error_code;
  std::string protocol_error_message;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // Set by a handler to accept a WebSocket handshake: the server completes the upgrade and
  // hands over the channel (status and body are then ignored).
  std::function<void(std::shared_ptr<WebSocketChannel>)> upgrade;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;            // 0 = any free port
  std::size_t body_limit = 1 << 20;  // bytes
  int idle_timeout_seconds = 30;
  int body_timeout_seconds = 300;  // reading one request body
  // Per-request body limit from the method and target (e.g. uploads); body_limit otherwise.
  std::function<std::size_t(const std::string& method, const std::string& target)> body_limit_for;
  // For routes whose limit exceeds body_limit (uploads): called with the header only, before
  // the body is read; a response refuses the request at once (e.g. 401), so that nobody can
  // make the host buffer a large body without credentials.
  std::function<std::optional<HttpResponse>(const HttpRequest& head)> check_before_body;
  std::string tls_cert_file;  // PEM chain; TLS (1.2+) when set
  std::string tls_key_file;   // PEM key, must not be readable by group or others
  // CA (PEM) for client certificates: clients may present one (mutual TLS); one that does
  // not verify fails the handshake. Clients without a certificate still connect.
  std::string tls_client_ca_file;
};

class HttpServer {
 public:
  // Sends the response for one request; callable once, from any thread.
  using Responder = std::function<void(HttpResponse)>;
  // Called on an I/O thread for each request. It must not block: work that blocks goes to
  // the blocking executor, which calls `respond` when done.
  using Handler = std::function<void(HttpRequest, Responder)>;

  HttpServer(ExecutorPools& pools, HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting; returns the bound port.
  Expected<std::uint16_t> start();
  // Stops accepting; open connections finish their current request.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// {"error": {"code": ..., "message": ..., "request_id": ...}} with `status`.
HttpResponse json_error(int status, const std::string& code, const std::string& message,
                        const std::string& request_id = "");

}  // namespace novacron

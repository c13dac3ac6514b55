// A small blocking HTTP/1.1 and WebSocket client (Boost.Beast stays inside http_client.cc):
// the CLI's connection to a host, and a host's calls to its peers over mutual TLS.
//
// Every call has a deadline (connect + TLS + request + response). With https the server's
// certificate must chain to `ca_file` (the system's trust store when empty) and name
// `server_name` (the URL's host when empty): a DNS name or an IP address SAN. Errors carry
// codes the callers act on:
//   bad_url, tls_config, bad_request       the call could not be made as given (URL, CA or
//                                          client certificate files, HTTP method)
//   connect_failed, timeout                the host is not reachable (no deadline covers a
//                                          DNS lookup: use addresses where that matters)
//   connection_lost                        the connection broke before the answer
//   untrusted_certificate, name_mismatch   the server is not who it must be
//   tls_failed                             the handshake failed otherwise (e.g. the server
//                                          refused our client certificate)
//   protocol_error                         not an HTTP answer
//   http_<status>                          websocket(): the server answered without upgrading
//   closed                                 WebSocketConnection::read(): the server closed it
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/common/error.h"

namespace novacron {

struct HttpClientOptions {
  std::string base_url;     // http://HOST:PORT or https://HOST:PORT (no path)
  std::string ca_file;      // PEM trust anchors for https
  std::string cert_file;    // client certificate for mutual TLS (optional)
  std::string key_file;     // its key
  std::string server_name;  // name the server certificate must carry; URL host when empty
  std::chrono::milliseconds timeout{10000};
};

struct HttpClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string header(const std::string& lower_name) const;
};

// A WebSocket the client opened; read() blocks for the next text message.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // The next message; error "closed" (with the server's reason) when the server closed it.
  virtual Expected<std::string> read() = 0;
  virtual void close() = 0;
};

class HttpClient {
 public:
  // Parses the URL and prepares TLS (reads the CA and client certificate files).
  static Expected<HttpClient> create(HttpClientOptions options);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // One request on a fresh connection. `target` is the path and query ("/v1/plugins").
  Expected<HttpClientResponse> request(const std::string& method, const std::string& target,
                                       const std::string& body = "",
                                       const std::vector<std::pair<std::string, std::string>>& headers = {});

  // WebSocket handshake on `target`. When the server answers with HTTP instead of 101, the
  // error is "http_<status>" with the answer's body as message. Reads have no deadline.
  Expected<std::unique_ptr<WebSocketConnection>> websocket(
      const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers = {});

  const std::string& base_url() const;

  struct Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace novacron

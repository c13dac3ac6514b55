#include "host/api/http_client.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>
#include <optional>

namespace novacron {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::size_t kResponseLimit = std::size_t{64} << 20;

// Runs one asynchronous operation to completion on `io` (the deadline is on the stream:
// Beast's tcp_stream cancels the operation with error::timeout when it passes).
template <typename Start>
beast::error_code run_op(asio::io_context& io, Start&& start) {
  beast::error_code result = asio::error::would_block;
  io.restart();
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.run();
  return result;
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// One connection: its own io_context, so that calls from any thread (CLI, blocking
// executor) never touch the host's I/O threads.
struct Connection {
  asio::io_context io;
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> secure;
  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

// Reads and writes fail with TLS errors when the server refuses our client certificate
// (TLS 1.3 reports it after the client's side of the handshake is done).
Error io_error(const std::string& url, const std::string& what, beast::error_code ec, std::chrono::milliseconds t) {
  if (ec == beast::error::timeout) {
    return Error{"timeout", url + ": no answer within " + std::to_string(t.count()) + " ms (" + what + ")"};
  }
  if (ec.category() == asio::error::get_ssl_category() || ec == asio::ssl::error::stream_truncated) {
    return Error{"tls_failed", url + ": the server ended TLS while " + what + ": " + ec.message() +
                                   " (does it accept this client's certificate?)"};
  }
  return Error{"connection_lost", url + ": connection failed while " + what + ": " + ec.message()};
}

template <typename Stream>
class WebSocketConnectionImpl final : public WebSocketConnection {
 public:
  WebSocketConnectionImpl(std::unique_ptr<Connection> conn, Stream stream)
      : conn_(std::move(conn)), ws_(std::move(stream)) {}
  ~WebSocketConnectionImpl() override { close(); }

  websocket::stream<Stream>& ws() { return ws_; }
  asio::io_context& io() { return conn_->io; }

  Expected<std::string> read() override {
    beast::flat_buffer buffer;
    beast::error_code ec;
    ws_.read(buffer, ec);
    if (ec == websocket::error::closed) {
      return make_error("closed", "the server closed the stream: " + std::string(ws_.reason().reason.c_str()));
    }
    if (ec) return make_error("connection_lost", "event stream failed: " + ec.message());
    return beast::buffers_to_string(buffer.data());
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  std::unique_ptr<Connection> conn_;
  websocket::stream<Stream> ws_;
  bool closed_ = false;
};

}  // namespace

std::string HttpClientResponse::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return "";
}

struct HttpClient::Impl {
  HttpClientOptions options;
  bool https = false;
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string host_header;  // as in the URL
  std::string server_name;  // what the certificate must name
  std::shared_ptr<asio::ssl::context> tls;

  Expected<void> parse_url() {
    const std::string& url = options.base_url;
    std::string rest;
    if (url.rfind("https://", 0) == 0) {
      https = true;
      rest = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
      rest = url.substr(7);
    } else {
      return make_error("bad_url", "\"" + url + "\" is not an http:// or https:// URL");
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.empty() || rest.find('/') != std::string::npos) {
      return make_error("bad_url", "\"" + url + "\": expected SCHEME://HOST[:PORT] without a path");
    }
    host_header = rest;
    if (rest.front() == '[') {
      auto close = rest.find(']');
      if (close == std::string::npos) return make_error("bad_url", "\"" + url + "\": unterminated [IPv6] address");
      host = rest.substr(1, close - 1);
      rest = rest.substr(close + 1);
      port = rest.empty() ? "" : rest.substr(1);
    } else {
      auto colon = rest.rfind(':');
      host = rest.substr(0, colon);
      port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    if (port.empty()) port = https ? "443" : "80";
    if (host.empty() || !std::all_of(port.begin(), port.end(), ::isdigit)) {
      return make_error("bad_url", "\"" + url + "\": expected SCHEME://HOST[:PORT]");
    }
    server_name = options.server_name.empty() ? host : options.server_name;
    return {};
  }

  Expected<void> setup_tls() {
    if (!https) return {};
    tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) return make_error("tls_config", options.ca_file + ": not a readable PEM CA certificate");
    }
    tls->set_verify_mode(asio::ssl::verify_peer);
    if (!options.cert_file.empty()) {
      tls->use_certificate_chain_file(options.cert_file, ec);
      if (ec) return make_error("tls_config", options.cert_file + ": not a readable PEM certificate");
      tls->use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
      if (ec) return make_error("tls_config", options.key_file + ": not a readable PEM key for " + options.cert_file);
    }
    return {};
  }

  // The certificate check failed or the handshake did: say which, in the terms operators use.
  Error handshake_error(SSL* ssl, beast::error_code ec) const {
    long verify = SSL_get_verify_result(ssl);
    const std::string& url = options.base_url;
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      return Error{"name_mismatch", url + ": its certificate does not name \"" + server_name + "\""};
    }
    if (verify != X509_V_OK) {
      return Error{"untrusted_certificate",
                   url + ": its certificate is not trusted: " + X509_verify_cert_error_string(verify) +
                       (options.ca_file.empty() ? "" : " (trusted CA: " + options.ca_file + ")")};
    }
    if (ec == beast::error::timeout) return io_error(url, "in the TLS handshake", ec, options.timeout);
    return Error{"tls_failed", url + ": TLS handshake failed: " + ec.message()};
  }

  Expected<std::unique_ptr<Connection>> connect(Clock::time_point deadline) {
    auto conn = std::make_unique<Connection>();
    tcp::resolver resolver(conn->io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return make_error("connect_failed", options.base_url + ": cannot resolve " + host + ": " + ec.message());
    if (https) {
      conn->secure.emplace(conn->io, *tls);
    } else {
      conn->plain.emplace(conn->io);
    }
    auto& low = conn->lowest();
    low.expires_at(deadline);
    ec = run_op(conn->io, [&](auto handler) { low.async_connect(endpoints, handler); });
    if (ec == beast::error::timeout)
      return tl::unexpected(io_error(options.base_url, "connecting", ec, options.timeout));
    if (ec) return make_error("connect_failed", options.base_url + ": cannot connect: " + ec.message());
    if (!https) return conn;

    SSL* ssl = conn->secure->native_handle();
    if (is_ip_address(server_name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, server_name.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, server_name.c_str());
    }
    low.expires_at(deadline);
    ec =
        run_op(conn->io, [&](auto handler) { conn->secure->async_handshake(asio::ssl::stream_base::client, handler); });
    if (ec) return tl::unexpected(handshake_error(ssl, ec));
    return conn;
  }

  template <typename Stream>
  Expected<HttpClientResponse> exchange(asio::io_context& io, Stream& stream, http::request<http::string_body>& req,
                                        Clock::time_point deadline) {
    const std::string& url = options.base_url;
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto ec = run_op(io, [&](auto handler) { http::async_write(stream, req, handler); });
    if (ec) return tl::unexpected(io_error(url, "sending the request", ec, options.timeout));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kResponseLimit);
    beast::get_lowest_layer(stream).expires_at(deadline);
    ec = run_op(io, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    // The server closing without an answer is a lost connection (a TLS listener does that
    // to plain HTTP); other parse errors mean it does not speak HTTP.
    if (ec && ec.category() == http::make_error_code(http::error::body_limit).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return make_error("protocol_error", url + ": not a usable HTTP answer: " + ec.message());
    }
    if (ec) return tl::unexpected(io_error(url, "reading the answer", ec, options.timeout));
    HttpClientResponse out;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = std::move(res.body());
    return out;
  }

  template <typename Stream>
  Expected<std::unique_ptr<WebSocketConnection>> upgrade(
      std::unique_ptr<Connection> conn, Stream stream, const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers, Clock::time_point deadline) {
    auto ws = std::make_unique<WebSocketConnectionImpl<Stream>>(std::move(conn), std::move(stream));
    ws->ws().set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      req.set(http::field::user_agent, "novacron/" NOVACRON_VERSION);
      for (const auto& [k, v] : headers) req.set(k, v);
    }));
    websocket::response_type res;
    beast::get_lowest_layer(ws->ws()).expires_at(deadline);
    auto ec = run_op(ws->io(), [&](auto handler) { ws->ws().async_handshake(res, host_header, target, handler); });
    if (ec == websocket::error::upgrade_declined) {
      return make_error("http_" + std::to_string(res.result_int()), res.body());
    }
    if (ec) return tl::unexpected(io_error(options.base_url, "opening the WebSocket", ec, options.timeout));
    beast::get_lowest_layer(ws->ws()).expires_never();
    return std::unique_ptr<WebSocketConnection>(std::move(ws));
  }
};

Expected<HttpClient> HttpClient::create(HttpClientOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  if (auto r = impl->parse_url(); !r) return tl::unexpected(r.error());
  if (auto r = impl->setup_tls(); !r) return tl::unexpected(r.error());
  return HttpClient(std::move(impl));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

const std::string& HttpClient::base_url() const { return impl_->options.base_url; }

Expected<HttpClientResponse> HttpClient::request(const std::string& method, const std::string& target,
                                                 const std::string& body,
                                                 const std::vector<std::pair<std::string, std::string>>& headers) {
  auto deadline = Clock::now() + impl_->options.timeout;
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) return make_error("bad_request", "unknown HTTP method " + method);
  auto conn = impl_->connect(deadline);
  if (!conn) return tl::unexpected(conn.error());
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, impl_->host_header);
  req.set(http::field::user_agent, "novacron/" NOVACRON_VERSION);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() && req.find(http::field::content_type) == req.end()) {
    req.set(http::field::content_type, "application/json");
  }
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  auto& c = **conn;
  if (c.secure) return impl_->exchange(c.io, *c.secure, req, deadline);
  return impl_->exchange(c.io, *c.plain, req, deadline);
}

Expected<std::unique_ptr<WebSocketConnection>> HttpClient::websocket(
    const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers) {
  auto deadline = Clock::now() + impl_->options.timeout;
  auto conn = impl_->connect(deadline);
  if (!conn) return tl::unexpected(conn.error());
  auto& c = **conn;
  if (c.secure) {
    TlsStream stream = std::move(*c.secure);
    c.secure.reset();
    return impl_->upgrade(std::move(*conn), std::move(stream), target, headers, deadline);
  }
  beast::tcp_stream stream = std::move(*c.plain);
  c.plain.reset();
  return impl_->upgrade(std::move(*conn), std::move(stream), target, headers, deadline);
}

}  // namespace novacron

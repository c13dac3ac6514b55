#include "host/api/http_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <nlohmann/json.hpp>

#include <deque>
#include <future>
#include <mutex>

#include "host/identity/certificates.h"
#include "host/services/executors_asio.h"

namespace novacron {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse json_error(int status, const std::string& code, const std::string& message,
                        const std::string& request_id) {
  nlohmann::json err = {{"code", code}, {"message", message}};
  if (!request_id.empty()) err["request_id"] = request_id;
  // Messages may quote client input that is not UTF-8: replace, never throw.
  return HttpResponse{status,
                      "application/json",
                      nlohmann::json{{"error", err}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      {}};
}

namespace {

namespace websocket = beast::websocket;

// One upgraded WebSocket connection: a write queue drained one message at a time on the
// connection's executor, and a read loop that only notices the peer going away.
template <typename Stream>
class WebSocketSession : public WebSocketChannel, public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  static constexpr size_t kMaxQueued = 4096;

  explicit WebSocketSession(Stream stream) : ws_(std::move(stream)) {}

  // `headers` (e.g. X-Request-Id) go into the 101 answer.
  void accept(http::request<http::string_body> request, std::function<void(std::shared_ptr<WebSocketChannel>)> ready,
              std::vector<std::pair<std::string, std::string>> headers) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket's own timeouts apply
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator([headers = std::move(headers)](websocket::response_type& res) {
      res.set(http::field::server, "novacrond");
      for (const auto& [name, value] : headers) res.set(name, value);
    }));
    auto self = this->shared_from_this();
    ws_.async_accept(request, [self, ready = std::move(ready)](beast::error_code ec) {
      if (ec) return self->closed();
      self->open_ = true;
      ready(self);
      self->read();
    });
  }

  bool send(std::string text) override {
    if (!open_) return false;
    auto self = this->shared_from_this();
    asio::dispatch(ws_.get_executor(), [self, text = std::move(text)]() mutable {
      if (!self->open_) return;
      if (self->queue_.size() >= kMaxQueued + self->burst_.load()) {
        return self->close("client too slow: more than " + std::to_string(self->queue_.size()) + " messages queued");
      }
      self->queue_.push_back(std::move(text));
      if (!self->writing_) self->write_next();
    });
    return true;
  }

  void close(const std::string& reason) override {
    auto self = this->shared_from_this();
    asio::dispatch(ws_.get_executor(), [self, reason] {
      if (!self->open_) return;
      self->open_ = false;
      self->ws_.async_close(websocket::close_reason(websocket::close_code::policy_error, reason),
                            [self](beast::error_code) { self->closed(); });
    });
  }

  bool is_open() const override { return open_; }

  void allow_burst(std::size_t messages) override { burst_ += messages; }

  void on_close(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(close_mutex_);
    if (closed_) {
      fn();
      return;
    }
    close_handlers_.push_back(std::move(fn));
  }

 private:
  void write_next() {
    if (queue_.empty() || !open_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    ws_.text(true);
    auto self = this->shared_from_this();
    ws_.async_write(asio::buffer(queue_.front()), [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      self->queue_.pop_front();
      self->write_next();
    });
  }

  void read() {
    auto self = this->shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      self->buffer_.consume(self->buffer_.size());  // clients have nothing to say on this stream
      self->read();
    });
  }

  void closed() {
    open_ = false;
    std::vector<std::function<void()>> handlers;
    {
      std::lock_guard<std::mutex> lock(close_mutex_);
      if (closed_) return;
      closed_ = true;
      handlers.swap(close_handlers_);
    }
    for (auto& h : handlers) h();
  }

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  std::atomic<bool> open_{false};
  std::atomic<std::size_t> burst_{0};
  std::mutex close_mutex_;
  bool closed_ = false;
  std::vector<std::function<void()>> close_handlers_;
};

// Reads requests and writes responses on one connection; Stream is beast::tcp_stream or
// beast::ssl_stream<beast::tcp_stream>.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, const HttpServerOptions& options, HttpServer::Handler& handler,
          std::shared_ptr<void> keep_server_alive)
      : stream_(std::move(stream)), options_(options), handler_(handler), server_(std::move(keep_server_alive)) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(options_.idle_timeout_seconds));
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {
          spdlog::debug("TLS handshake failed: {}", ec.message());
          return;
        }
        self->remember_client_certificate();
        self->read();
      });
    }
  }

 private:
  // The header first, then the body with the limit that applies to this route (uploads
  // have a larger one than ordinary JSON bodies).
  void read() {
    parser_.emplace();
    // Beast checks Content-Length against the limit while it parses the header, before the
    // route is known: no limit for the header, then the route's limit (checked here for a
    // declared length, by Beast for chunked bodies).
    parser_->body_limit(boost::none);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(options_.idle_timeout_seconds));
    http::async_read_header(
        stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->on_read(ec);
          const auto& head = self->parser_->get();
          std::size_t limit =
              self->options_.body_limit_for
                  ? self->options_.body_limit_for(std::string(head.method_string()), std::string(head.target()))
                  : self->options_.body_limit;
          if (auto length = self->parser_->content_length(); length && *length > limit) {
            return self->on_read(http::error::body_limit);
          }
          self->parser_->body_limit(limit);
          if (self->parser_->is_done()) return self->on_read({});
          if (limit > self->options_.body_limit && self->options_.check_before_body) {
            if (auto refused = self->options_.check_before_body(self->to_request(self->parser_->get()))) {
              return self->write(std::move(*refused), /*keep_alive=*/false);
            }
          }
          // Large bodies (uploads) get more time than the idle timeout.
          beast::get_lowest_layer(self->stream_)
              .expires_after(std::chrono::seconds(self->options_.body_timeout_seconds));
          http::async_read(self->stream_, self->buffer_, *self->parser_,
                           [self](beast::error_code ec2, std::size_t) { self->on_read(ec2); });
        });
  }

  // A client certificate is only there after the handshake verified it against the client
  // CA (verify_peer fails the handshake otherwise); checked again to be explicit.
  void remember_client_certificate() {
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      SSL* ssl = stream_.native_handle();
      X509* cert = SSL_get_peer_certificate(ssl);
      if (cert != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) peer_identity_ = certificate_identity(cert);
      X509_free(cert);
    }
  }

  HttpRequest to_request(http::request<http::string_body>& req) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      r.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    r.body = std::move(req.body());
    if (remote_address_.empty()) {  // once per connection: getpeername is a syscall
      beast::error_code rec;
      auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(rec);
      if (!rec) remote_address_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    r.remote_address = remote_address_;
    r.tls_peer_subject = peer_identity_.subject;
    r.tls_peer_names = peer_identity_.names;
    return r;
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::ssl::error::stream_truncated) {
      return close();
    }
    HttpRequest r;
    bool keep_alive = false;
    if (ec == http::error::body_limit) {
      r.protocol_error_status = 413;
      r.protocol_error_code = "payload_too_large";
      const auto& head = parser_->get();
      std::size_t limit = options_.body_limit_for
                              ? options_.body_limit_for(std::string(head.method_string()), std::string(head.target()))
                              : options_.body_limit;
      r.protocol_error_message = "request body exceeds the limit of " + std::to_string(limit) + " bytes for this route";
    } else if (ec) {
      r.protocol_error_status = 400;
      r.protocol_error_code = "bad_request";
      r.protocol_error_message = "malformed HTTP request: " + ec.message();
    } else {
      keep_alive = parser_->get().keep_alive();
      r = to_request(parser_->get());
      r.websocket_upgrade = websocket::is_upgrade(parser_->get());
    }
    if (r.protocol_error_status != 0) {
      const auto& head = parser_->get();
      r.method = std::string(head.method_string());
      r.target = std::string(head.target());
    }
    // The responder may run on any thread; the write goes back onto this connection's strand.
    auto self = this->shared_from_this();
    auto respond = [self, keep_alive](HttpResponse out) {
      auto executor = self->stream_.get_executor();
      asio::dispatch(executor,
                     [self, keep_alive, out = std::move(out)]() mutable { self->write(std::move(out), keep_alive); });
    };
    try {
      handler_(std::move(r), std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("request handler threw error=\"{}\"", e.what());
      write(json_error(500, "internal", "internal error"), false);
    }
  }

  void write(HttpResponse out, bool keep_alive) {
    if (out.upgrade && parser_ && websocket::is_upgrade(parser_->get())) {
      // The connection becomes a WebSocket; this HTTP session ends here.
      auto ws = std::make_shared<WebSocketSession<Stream>>(std::move(stream_));
      ws->accept(parser_->release(), std::move(out.upgrade), std::move(out.headers));
      return;
    }
    response_ = {};
    response_.version(11);
    response_.result(static_cast<http::status>(out.status));
    response_.set(http::field::server, "novacrond");
    response_.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) response_.set(name, value);
    response_.keep_alive(keep_alive);
    response_.body() = std::move(out.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code wec, std::size_t) {
                        if (wec || !keep_alive) return self->close();
                        self->read();
                      });
  }

  void close() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    }
  }

  Stream stream_;
  std::string remote_address_;
  CertificateIdentity peer_identity_;
  const HttpServerOptions& options_;
  HttpServer::Handler& handler_;
  std::shared_ptr<void> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, HttpServerOptions opts, Handler h)
      : io(io), options(std::move(opts)), handler(std::move(h)), acceptor(asio::make_strand(io)) {}

  asio::io_context& io;
  HttpServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  std::optional<asio::ssl::context> tls;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        if (self->tls) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(s)), *self->tls), self->options,
              self->handler, self)
              ->start();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), self->options, self->handler,
                                                       self)
              ->start();
        }
      }
      self->accept();
    });
  }

  // TLS 1.2 or newer with the configured certificate chain and key.
  Expected<void> setup_tls() {
    if (options.tls_cert_file.empty()) return {};
    struct stat st {};
    if (::stat(options.tls_key_file.c_str(), &st) != 0) {
      return make_error("tls_config", options.tls_key_file + ": cannot read the TLS key");
    }
    if ((st.st_mode & 077) != 0) {
      return make_error("tls_config", options.tls_key_file + " is readable by group or others; run chmod 600 on it");
    }
    tls.emplace(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    tls->use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec) return make_error("tls_config", options.tls_cert_file + ": not a usable PEM certificate chain");
    tls->use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
    if (ec)
      return make_error("tls_config", options.tls_key_file + ": not a usable PEM private key for the certificate");
    if (!options.tls_client_ca_file.empty()) {
      tls->load_verify_file(options.tls_client_ca_file, ec);
      if (ec) return make_error("tls_config", options.tls_client_ca_file + ": not a usable PEM CA certificate");
      // Ask for a client certificate (and name the acceptable CA) but do not require one:
      // token clients have none. A certificate that is sent must verify.
      tls->set_verify_mode(asio::ssl::verify_peer);
      SSL_CTX* native = tls->native_handle();
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.tls_client_ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(native, names);
      }
      // Session resumption with client verification needs a session id context.
      static const unsigned char kContext[] = "novacrond";
      SSL_CTX_set_session_id_context(native, kContext, sizeof kContext - 1);
    }
    return {};
  }
};

HttpServer::HttpServer(ExecutorPools& pools, HttpServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io_context_of(pools), std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Expected<std::uint16_t> HttpServer::start() {
  if (auto r = impl_->setup_tls(); !r) return tl::unexpected(r.error());
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) return make_error("listen_failed", "invalid listen address \"" + impl_->options.address + "\"");
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("listen_failed", "cannot listen on " + impl_->options.address + ":" +
                                           std::to_string(impl_->options.port) + ": " + ec.message());
  }
  std::uint16_t port = a.local_endpoint().port();
  asio::post(a.get_executor(), [impl = impl_] { impl->accept(); });
  return port;
}

void HttpServer::stop() {
  if (!impl_) return;
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  asio::post(impl_->acceptor.get_executor(), [impl = impl_, done] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    done->set_value();
  });
  fut.wait_for(std::chrono::seconds(5));
  impl_.reset();
}

}  // namespace novacron

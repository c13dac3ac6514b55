#include "host/api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <future>

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
  return HttpResponse{status, "application/json", nlohmann::json{{"error", err}}.dump()};
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, HttpServerOptions opts, Handler h)
      : io(io), options(std::move(opts)), handler(std::move(h)), acceptor(asio::make_strand(io)) {}

  asio::io_context& io;
  HttpServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(s), self)->read();
      self->accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, std::shared_ptr<Impl> server) : stream(std::move(s)), server(std::move(server)) {}
    beast::tcp_stream stream;
    std::shared_ptr<Impl> server;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->body_limit(server->options.body_limit);
      stream.expires_after(std::chrono::seconds(server->options.idle_timeout_seconds));
      http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_read(ec);
      });
    }

    void on_read(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset) {
        return close();
      }
      HttpResponse out;
      bool keep_alive = false;
      if (ec == http::error::body_limit) {
        out = json_error(413, "payload_too_large", "request body exceeds " +
                                                       std::to_string(server->options.body_limit) + " bytes");
      } else if (ec) {
        out = json_error(400, "bad_request", "malformed HTTP request: " + ec.message());
      } else {
        auto& req = parser->get();
        keep_alive = req.keep_alive();
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) {
          std::string name(f.name_string());
          std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
          r.headers.emplace_back(std::move(name), std::string(f.value()));
        }
        r.body = std::move(req.body());
        beast::error_code rec;
        auto ep = stream.socket().remote_endpoint(rec);
        if (!rec) r.remote_address = ep.address().to_string() + ":" + std::to_string(ep.port());
        try {
          out = server->handler(r);
        } catch (const std::exception& e) {
          spdlog::error("request handler threw target={} error=\"{}\"", r.target, e.what());
          out = json_error(500, "internal", "internal error");
        }
      }
      response = {};
      response.version(11);
      response.result(static_cast<http::status>(out.status));
      response.set(http::field::server, "novacrond");
      response.set(http::field::content_type, out.content_type);
      response.keep_alive(keep_alive);
      response.body() = std::move(out.body);
      response.prepare_payload();
      http::async_write(stream, response, [self = shared_from_this(), keep_alive](beast::error_code wec, std::size_t) {
        if (wec || !keep_alive) return self->close();
        self->read();
      });
    }

    void close() {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  };
};

HttpServer::HttpServer(ExecutorPools& pools, HttpServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io_context_of(pools), std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Expected<std::uint16_t> HttpServer::start() {
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

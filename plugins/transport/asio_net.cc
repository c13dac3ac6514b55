// The only translation unit of the transport that includes Asio and OpenSSL (a Beast/SSL
// unit costs about a minute to compile here; keeping it alone keeps rebuilds cheap).
#include "asio_net.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "frames.h"

namespace novacron::transport {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using SslStream = ssl::stream<tcp::socket>;

namespace {

constexpr unsigned char kAlpn[] = "\x14novacron-transport/1";
constexpr std::string_view kAlpnName = "novacron-transport/1";
constexpr size_t kReadChunk = 256u << 10;

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

// The certificate's node name: its first DNS SAN, else its CN (as the host's
// certificate_identity does).
std::string certificate_name(X509* cert) {
  if (cert == nullptr) return {};
  std::string name;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && name.empty(); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const unsigned char* s = ASN1_STRING_get0_data(n->d.dNSName);
      name.assign(reinterpret_cast<const char*>(s), static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (name.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) name = cn;
  }
  return name;
}

int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* /*arg*/) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpn, sizeof kAlpn - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

bool alpn_ok(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return p != nullptr && std::string_view(reinterpret_cast<const char*>(p), len) == kAlpnName;
}

bool configure_context(ssl::context& ctx, const TlsIdentity& id, bool server, std::string& error) {
  SSL_CTX* c = ctx.native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(c, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_load_verify_locations(c, id.ca_file.c_str(), nullptr) != 1) {
    error = "cannot load the cluster CA " + id.ca_file + ": " + openssl_errors();
    return false;
  }
  if (SSL_CTX_use_certificate_chain_file(c, id.cert_file.c_str()) != 1) {
    error = "cannot load the node certificate " + id.cert_file + ": " + openssl_errors();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(c, id.key_file.c_str(), SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(c) != 1) {
    error = "cannot load the node key " + id.key_file + " (or it does not match the certificate): " + openssl_errors();
    return false;
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (server) {
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
  } else if (SSL_CTX_set_alpn_protos(c, kAlpn, sizeof kAlpn - 1) != 0) {
    error = "cannot set ALPN";
    return false;
  }
  return true;
}

// One TLS connection, driven on the network thread. Session threads talk to it only
// through the mutex-protected queues below.
class AsioConnection : public std::enable_shared_from_this<AsioConnection> {
 public:
  AsioConnection(tcp::socket socket, ssl::context& ctx, const NetLimits& limits)
      : stream_(std::move(socket), ctx), limits_(limits), reader_(limits.max_frame) {}

  SslStream& stream() { return stream_; }
  void set_peer_name(std::string name) { peer_name_ = std::move(name); }
  const std::string& peer_name() const { return peer_name_; }

  // Network thread: starts the read loop once TLS is up.
  void start() {
    update_counters();
    read_more();
  }

  bool send_prepared(FrameType type, std::uint16_t flags, std::vector<std::uint8_t> buffer) {
    std::unique_lock lock(mu_);
    write_cv_.wait(lock, [&] { return closed_ || queued_bytes_ < limits_.write_budget_bytes; });
    if (closed_ || closing_) return false;
    FrameHeader h;
    h.type = type;
    h.flags = flags;
    h.length = static_cast<std::uint32_t>(buffer.size() - kHeaderSize);
    h.seq = next_seq_++;
    const auto header = encode_header(h);
    std::copy(header.begin(), header.end(), buffer.begin());
    queued_bytes_ += buffer.size();
    outbox_.push_back(std::move(buffer));
    if (!writing_) {
      writing_ = true;
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->write_next(); });
    }
    return true;
  }

  bool wait_writable(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return write_cv_.wait_for(lock, timeout, [&] { return closed_ || queued_bytes_ < limits_.write_budget_bytes; });
  }

  Received receive(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const bool ready = read_cv_.wait_for(lock, timeout, [&] { return !inbox_.empty() || closed_; });
    Received r;
    if (!inbox_.empty()) {
      r.status = Received::Status::kFrame;
      r.frame = std::move(inbox_.front());
      inbox_.pop_front();
      inbox_bytes_ -= r.frame.payload.size() + kHeaderSize;
      if (read_paused_ && inbox_bytes_ < limits_.read_budget_bytes / 2) {
        read_paused_ = false;
        asio::post(stream_.get_executor(), [self = shared_from_this()] { self->read_more(); });
      }
      return r;
    }
    if (!ready) {
      r.status = Received::Status::kTimeout;
      return r;
    }
    r.status = Received::Status::kClosed;
    r.reason = close_reason_;
    r.certificate_refused = certificate_refused_;
    return r;
  }

  void close(std::chrono::milliseconds timeout) {
    {
      std::unique_lock lock(mu_);
      if (closed_) return;
      closing_ = true;
    }
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->shutdown_when_drained(); });
    std::unique_lock lock(mu_);
    if (!read_cv_.wait_for(lock, timeout, [&] { return closed_; })) {
      lock.unlock();
      abort("close timed out");
    }
  }

  void abort(const std::string& reason) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), reason] { self->fail(reason); });
  }

  // Network thread: closes at once (node stopping).
  void fail_now(const std::string& reason) { fail(reason); }

  std::int64_t wire_sent() const { return wire_sent_.load(std::memory_order_relaxed); }
  std::int64_t wire_received() const { return wire_received_.load(std::memory_order_relaxed); }

  // Network thread: sends an ERROR frame and closes (used before a session exists).
  void refuse(std::uint16_t code, const std::string& message) {
    ErrorFrame e;
    e.code = code;
    e.message = message;
    const auto payload = e.encode();
    std::vector<std::uint8_t> buffer(kHeaderSize + payload.size());
    std::copy(payload.begin(), payload.end(), buffer.begin() + kHeaderSize);
    {
      std::lock_guard lock(mu_);
      FrameHeader h;
      h.type = FrameType::kError;
      h.length = static_cast<std::uint32_t>(payload.size());
      h.seq = next_seq_++;
      const auto header = encode_header(h);
      std::copy(header.begin(), header.end(), buffer.begin());
      outbox_.push_back(std::move(buffer));
      closing_ = true;
      writing_ = true;
    }
    write_next();
  }

 private:
  void update_counters() {
    BIO* bio = SSL_get_rbio(stream_.native_handle());
    if (bio == nullptr) return;
    wire_sent_.store(static_cast<std::int64_t>(BIO_number_written(bio)), std::memory_order_relaxed);
    wire_received_.store(static_cast<std::int64_t>(BIO_number_read(bio)), std::memory_order_relaxed);
  }

  void read_more() {
    stream_.async_read_some(
        asio::buffer(read_buf_.data(), read_buf_.size()),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, size_t n) {
    update_counters();
    if (n > 0) reader_.feed(std::span<const std::uint8_t>(read_buf_.data(), n));
    bool pause = false;
    {
      std::lock_guard lock(mu_);
      while (true) {
        auto next = reader_.next();
        if (auto* frame = std::get_if<Frame>(&next)) {
          inbox_bytes_ += frame->payload.size() + kHeaderSize;
          inbox_.push_back(std::move(*frame));
          continue;
        }
        if (auto* error = std::get_if<FrameError>(&next)) {
          protocol_error_ = error->reason + " at offset " + std::to_string(error->offset);
          protocol_error_code_ = error->code == WireError::kTooLarge ? 4 : 1;  // frame_too_large, malformed
        }
        break;
      }
      if (!inbox_.empty()) read_cv_.notify_all();
      pause = inbox_bytes_ >= limits_.read_budget_bytes;
      read_paused_ = pause;
    }
    if (!protocol_error_.empty()) {
      if (limits_.log_refusal) {
        limits_.log_refusal("transport connection closed peer=" + peer_name_ + " reason=\"" + protocol_error_ + "\"");
      }
      refuse(protocol_error_code_, protocol_error_);
      fail_soon("protocol error: " + protocol_error_);
      return;
    }
    if (ec) {
      fail(describe_read_error(ec));
      return;
    }
    if (!pause) read_more();
  }

  std::string describe_read_error(const boost::system::error_code& ec) {
    if (ec == asio::error::eof) {
      return reader_.buffered() > 0 ? "truncated frame: the peer closed mid-frame" : "the peer closed the connection";
    }
    if (ec == ssl::error::stream_truncated) {
      return reader_.buffered() > 0 ? "truncated frame: the connection broke mid-frame"
                                    : "the connection broke without TLS close_notify";
    }
    const std::string msg = ec.message();
    if (ec.category() == asio::error::get_ssl_category() &&
        (msg.find("unknown ca") != std::string::npos || msg.find("certificate") != std::string::npos)) {
      std::lock_guard lock(mu_);
      certificate_refused_ = true;
    }
    return "TLS: " + msg;
  }

  void write_next() {
    std::vector<std::uint8_t>* front = nullptr;
    bool closing = false;
    {
      std::lock_guard lock(mu_);
      if (outbox_.empty()) {
        writing_ = false;
        closing = closing_;
      } else {
        front = &outbox_.front();
      }
    }
    if (front == nullptr) {
      if (closing) shutdown_when_drained();
      return;
    }
    asio::async_write(
        stream_, asio::buffer(*front),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t /*n*/) { self->on_written(ec); });
  }

  void on_written(const boost::system::error_code& ec) {
    update_counters();
    {
      std::lock_guard lock(mu_);
      if (!outbox_.empty()) {
        queued_bytes_ -= outbox_.front().size();
        outbox_.pop_front();
      }
      write_cv_.notify_all();
    }
    if (ec) {
      fail("write failed: " + ec.message());
      return;
    }
    write_next();
  }

  void shutdown_when_drained() {
    {
      std::lock_guard lock(mu_);
      if (closed_ || shutdown_started_) return;
      if (writing_ || !outbox_.empty()) return;  // write_next calls us again once drained
      shutdown_started_ = true;
    }
    stream_.async_shutdown([self = shared_from_this()](const boost::system::error_code&) {
      self->update_counters();
      self->fail("closed");
    });
    // A peer that never answers close_notify must not hold the socket open.
    auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), std::chrono::seconds(2));
    timer->async_wait([self = shared_from_this(), timer](const boost::system::error_code& ec) {
      if (!ec) self->fail("closed (no close_notify from the peer)");
    });
  }

  // Lets the ERROR frame go out before the socket closes.
  void fail_soon(const std::string& reason) {
    auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), std::chrono::milliseconds(200));
    timer->async_wait(
        [self = shared_from_this(), timer, reason](const boost::system::error_code&) { self->fail(reason); });
  }

  // Network thread only.
  void fail(const std::string& reason) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      close_reason_ = reason;
      // The frame being written stays until its write completes (aborted by the close
      // below): the TLS layer may still copy from it.
      const size_t keep = writing_ && !outbox_.empty() ? 1 : 0;
      outbox_.erase(outbox_.begin() + static_cast<std::ptrdiff_t>(keep), outbox_.end());
      queued_bytes_ = keep == 1 ? outbox_.front().size() : 0;
      read_cv_.notify_all();
      write_cv_.notify_all();
    }
    boost::system::error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.lowest_layer().close(ignored);
  }

  SslStream stream_;
  NetLimits limits_;
  FrameReader reader_;
  std::string peer_name_;
  std::array<std::uint8_t, kReadChunk> read_buf_{};
  std::string protocol_error_;  // network thread only
  std::uint16_t protocol_error_code_ = 1;
  bool shutdown_started_ = false;

  std::mutex mu_;
  std::condition_variable read_cv_, write_cv_;
  std::deque<Frame> inbox_;
  size_t inbox_bytes_ = 0;
  bool read_paused_ = false;
  std::deque<std::vector<std::uint8_t>> outbox_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool certificate_refused_ = false;
  std::string close_reason_;
  std::uint32_t next_seq_ = 0;
  std::atomic<std::int64_t> wire_sent_{0}, wire_received_{0};
};

// What sessions hold: closes the connection when dropped.
class ConnectionHandle final : public FrameConnection {
 public:
  explicit ConnectionHandle(std::shared_ptr<AsioConnection> c) : c_(std::move(c)) {}
  ~ConnectionHandle() override { c_->abort("dropped"); }
  bool send_prepared(FrameType type, std::uint16_t flags, std::vector<std::uint8_t> buffer) override {
    return c_->send_prepared(type, flags, std::move(buffer));
  }
  bool wait_writable(std::chrono::milliseconds timeout) override { return c_->wait_writable(timeout); }
  Received receive(std::chrono::milliseconds timeout) override { return c_->receive(timeout); }
  void close(std::chrono::milliseconds timeout) override { c_->close(timeout); }
  void abort(const std::string& reason) override { c_->abort(reason); }
  const std::string& peer_name() const override { return c_->peer_name(); }
  std::int64_t wire_bytes_sent() const override { return c_->wire_sent(); }
  std::int64_t wire_bytes_received() const override { return c_->wire_received(); }

 private:
  std::shared_ptr<AsioConnection> c_;
};

class AsioNetService final : public NetService {
 public:
  AsioNetService(const NetLimits& limits)
      : limits_(limits),
        server_ctx_(ssl::context::tls_server),
        client_ctx_(ssl::context::tls_client),
        work_(asio::make_work_guard(io_)) {}

  bool init(const TlsIdentity& id, std::string& error) {
    if (!configure_context(server_ctx_, id, true, error) || !configure_context(client_ctx_, id, false, error)) {
      return false;
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "transport-net");
      io_.run();
    });
    return true;
  }

  ~AsioNetService() override { stop(); }

  std::uint16_t listen(const std::string& address, PeerFilter filter, AcceptHandler handler,
                       std::string& error) override {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(address, host, port)) {
      error = "listen address '" + address + "' is not HOST:PORT";
      return 0;
    }
    std::promise<std::uint16_t> bound;
    asio::post(io_, [&] {
      try {
        const auto ip = asio::ip::make_address(host);
        acceptor_ = std::make_unique<tcp::acceptor>(io_);
        const tcp::endpoint ep(ip, port);
        acceptor_->open(ep.protocol());
        acceptor_->set_option(tcp::acceptor::reuse_address(true));
        acceptor_->bind(ep);
        acceptor_->listen();
        filter_ = std::move(filter);
        handler_ = std::move(handler);
        accept_next();
        bound.set_value(acceptor_->local_endpoint().port());
      } catch (const std::exception& e) {
        acceptor_.reset();
        error = "cannot listen on " + address + ": " + e.what();
        bound.set_value(0);
      }
    });
    return bound.get_future().get();
  }

  std::unique_ptr<FrameConnection> connect(const std::string& address, const std::string& peer_name,
                                           ConnectError& error) override {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(address, host, port)) {
      error = {"connect_failed", "peer address '" + address + "' is not HOST:PORT"};
      return nullptr;
    }
    std::promise<std::shared_ptr<AsioConnection>> done;
    auto finished = std::make_shared<std::atomic<bool>>(false);
    asio::post(io_, [&, finished] { start_connect(host, port, peer_name, done, error, finished); });
    auto conn = done.get_future().get();
    if (!conn) return nullptr;
    return std::make_unique<ConnectionHandle>(std::move(conn));
  }

  void stop() override {
    if (!thread_.joinable()) return;
    std::promise<void> closed;
    asio::post(io_, [this, &closed] {
      boost::system::error_code ignored;
      if (acceptor_) acceptor_->close(ignored);
      for (const auto& weak : connections_) {
        if (auto c = weak.lock()) c->fail_now("the transport is stopping");
      }
      connections_.clear();
      closed.set_value();
    });
    closed.get_future().wait();
    work_.reset();
    io_.stop();
    thread_.join();
  }

 private:
  // Network thread: remembers a connection so that stop() can close it.
  void track(const std::shared_ptr<AsioConnection>& conn) {
    std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
    connections_.push_back(conn);
  }

  void accept_next() {
    acceptor_->async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_ || !acceptor_->is_open()) return;
      if (!ec) on_accepted(std::move(socket));
      accept_next();
    });
  }

  void refused(const std::string& remote, const std::string& reason) {
    if (limits_.log_refusal)
      limits_.log_refusal("transport connection refused from=" + remote + " reason=\"" + reason + "\"");
  }

  void on_accepted(tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const auto endpoint = socket.remote_endpoint(ignored);
    const std::string remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    auto conn = std::make_shared<AsioConnection>(std::move(socket), server_ctx_, limits_);
    track(conn);
    auto timer = std::make_shared<asio::steady_timer>(io_, limits_.handshake_timeout);
    timer->async_wait([this, conn, remote](const boost::system::error_code& ec) {
      if (ec) return;
      refused(remote, "TLS handshake timed out");
      conn->abort("TLS handshake timed out");
    });
    conn->stream().async_handshake(ssl::stream_base::server,
                                   [this, conn, timer, remote](const boost::system::error_code& ec) {
                                     timer->cancel();
                                     if (ec) {
                                       if (ec != asio::error::operation_aborted)
                                         refused(remote, "TLS handshake failed: " + ec.message());
                                       conn->abort("TLS handshake failed: " + ec.message());
                                       return;
                                     }
                                     SSL* s = conn->stream().native_handle();
                                     if (!alpn_ok(s)) {
                                       refused(remote, "no ALPN novacron-transport/1");
                                       conn->abort("no ALPN novacron-transport/1");
                                       return;
                                     }
                                     X509* cert = SSL_get1_peer_certificate(s);
                                     std::string name = certificate_name(cert);
                                     X509_free(cert);
                                     conn->set_peer_name(name);
                                     if (!filter_ || !filter_(name)) {
                                       refused(remote, "node '" + name + "' is not a peer of this node");
                                       conn->start();
                                       conn->refuse(5, "node '" + name + "' is not a peer of this node");
                                       return;
                                     }
                                     conn->start();
                                     handler_(std::make_unique<ConnectionHandle>(conn));
                                   });
  }

  void start_connect(const std::string& host, std::uint16_t port, const std::string& peer_name,
                     std::promise<std::shared_ptr<AsioConnection>>& done, ConnectError& error,
                     const std::shared_ptr<std::atomic<bool>>& finished) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(host, ec);
    if (ec) {
      error = {"connect_failed", "peer host '" + host + "' is not an IP address"};
      done.set_value(nullptr);
      return;
    }
    auto conn = std::make_shared<AsioConnection>(tcp::socket(io_), client_ctx_, limits_);
    track(conn);
    SSL* s = conn->stream().native_handle();
    SSL_set_tlsext_host_name(s, peer_name.c_str());
    SSL_set1_host(s, peer_name.c_str());
    auto timer = std::make_shared<asio::steady_timer>(io_, limits_.connect_timeout + limits_.handshake_timeout);
    auto finish = [&done, &error, finished, timer](std::shared_ptr<AsioConnection> c, ConnectError e) {
      if (finished->exchange(true)) return;
      timer->cancel();
      if (!c) error = std::move(e);
      done.set_value(std::move(c));
    };
    timer->async_wait([conn, finish](const boost::system::error_code& tec) {
      if (tec) return;
      conn->abort("connect timed out");
      finish(nullptr, {"timeout", "no TLS connection within the connect and handshake timeouts"});
    });
    conn->stream().lowest_layer().async_connect(
        tcp::endpoint(ip, port), [conn, finish, peer_name](const boost::system::error_code& cec) {
          if (cec) {
            finish(nullptr, {"connect_failed", "cannot connect: " + cec.message()});
            return;
          }
          boost::system::error_code ignored;
          conn->stream().lowest_layer().set_option(tcp::no_delay(true), ignored);
          conn->stream().async_handshake(ssl::stream_base::client, [conn, finish,
                                                                    peer_name](const boost::system::error_code& hec) {
            SSL* s = conn->stream().native_handle();
            if (hec) {
              const long verify = SSL_get_verify_result(s);
              std::string code = "tls_failed";
              if (verify == X509_V_ERR_HOSTNAME_MISMATCH) {
                code = "name_mismatch";
              } else if (verify != X509_V_OK) {
                code = "untrusted_certificate";
              }
              const std::string detail = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : hec.message();
              conn->abort("handshake failed");
              finish(nullptr, {code, "TLS handshake with '" + peer_name + "' failed: " + detail});
              return;
            }
            if (!alpn_ok(s)) {
              conn->abort("no ALPN");
              finish(nullptr, {"tls_failed", "the peer does not speak novacron-transport/1 (ALPN)"});
              return;
            }
            conn->set_peer_name(peer_name);
            conn->start();
            finish(conn, {});
          });
        });
  }

  NetLimits limits_;
  asio::io_context io_;
  ssl::context server_ctx_;
  ssl::context client_ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  PeerFilter filter_;
  AcceptHandler handler_;
  std::vector<std::weak_ptr<AsioConnection>> connections_;
};

}  // namespace

bool split_host_port(const std::string& address, std::string& host, std::uint16_t& port) {
  std::string port_text;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') return false;
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = address.substr(0, colon);
    if (host.find(':') != std::string::npos) return false;
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return false;
  unsigned value = 0;
  for (const char c : port_text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

std::unique_ptr<NetService> NetService::create(const TlsIdentity& identity, const NetLimits& limits,
                                               std::string& error) {
  auto service = std::make_unique<AsioNetService>(limits);
  if (!service->init(identity, error)) return nullptr;
  return service;
}

}  // namespace novacron::transport

#include "tunnel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "asio_net.h"
#include "bandwidth_scheduler.h"
#include "codec.h"
#include "error_codes.h"
#include "frames.h"
#include "session_common.h"
#include "tunnel_frames.h"

namespace novacron::transport {

namespace {

constexpr int kPollMs = 100;

// What both pump directions share: the first failure ends the tunnel.
struct PumpState {
  std::mutex mu;
  std::string error_code, message;
  std::atomic<bool> failed{false};
  std::atomic<bool> out_done{false};  // local EOF sent (or the out pump ended)
  void fail(const std::string& code, const std::string& why) {
    std::lock_guard lock(mu);
    if (failed.exchange(true)) return;
    error_code = code;
    message = why;
  }
};

void reset_local(int fd) {
  // RST, so that the local peer (QEMU) notices at once instead of seeing a clean EOF.
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::shutdown(fd, SHUT_RDWR);
}

bool write_all(int fd, const std::uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A cancel ends both directions: the peer gets a reset, and so does the local socket.
void cancel_both(FrameConnection& conn, int fd, PumpState& state) {
  state.fail("cancelled", "the tunnel was cancelled");
  TunnelReset r;
  r.code = static_cast<std::uint16_t>(ErrorCode::kCancelled);
  conn.send(FrameType::kTunnelReset, 0, r.encode());
  reset_local(fd);
}

// Local socket -> TUNNEL_DATA ... TUNNEL_EOF.
void pump_out(FrameConnection& conn, int fd, int level, BandwidthGate* gate, std::uint64_t key, TransferEntry& entry,
              PumpState& state) {
  std::vector<std::uint8_t> chunk(kMaxTunnelChunk);
  BatchCompressor compressor;
  IncompressibleDetector detector;
  static const std::atomic<bool> kNever{false};
  while (!state.failed.load()) {
    if (entry.cancelled().load()) return cancel_both(conn, fd, state);
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, kPollMs);
    if (ready == 0) continue;
    const ssize_t n = ready < 0 ? -1 : ::recv(fd, chunk.data(), chunk.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      state.fail("connection_lost", std::string("local socket: ") + std::strerror(errno));
      TunnelReset r;
      r.code = static_cast<std::uint16_t>(9);
      conn.send(FrameType::kTunnelReset, 0, r.encode());
      return;
    }
    if (n == 0) {
      state.out_done = true;  // before the EOF leaves: the peer may close as soon as it sees it
      conn.send(FrameType::kTunnelEof, 0, {});
      return;
    }
    const std::span<const std::uint8_t> raw(chunk.data(), static_cast<size_t>(n));
    std::vector<std::uint8_t> body;
    // Chunks too small to compress (interactive traffic) say nothing about the data.
    const bool try_zstd = level > 0 && raw.size() >= 512 && detector.should_try();
    const int used = try_zstd ? compressor.compress(raw, level, body) : 0;
    if (try_zstd) detector.record(used > 0);
    if (!try_zstd) body.assign(raw.begin(), raw.end());
    auto frame = tunnel_data_prefix(used > 0 ? 1 : 0, static_cast<std::uint32_t>(n), kHeaderSize);
    frame.insert(frame.end(), body.begin(), body.end());
    if (gate != nullptr && !gate->acquire(key, static_cast<std::int64_t>(frame.size()), kNever)) {
      state.fail("cancelled", "the tunnel was closed");
      return;
    }
    if (!conn.send_prepared(FrameType::kTunnelData, 0, std::move(frame))) {
      state.fail("connection_lost", "the peer connection closed");
      return;
    }
    entry.add_progress(n);
  }
}

// TUNNEL_DATA ... TUNNEL_EOF -> local socket.
void pump_in(FrameConnection& conn, int fd, TransferEntry& entry, PumpState& state) {
  BatchDecompressor decompressor;
  std::vector<std::uint8_t> decoded;
  bool peer_eof = false;
  while (!state.failed.load()) {
    // After the peer's EOF, keep watching the connection (a reset or a drop must still be
    // seen) until this side's own direction has ended too.
    if (peer_eof && state.out_done.load()) return;
    if (entry.cancelled().load()) return cancel_both(conn, fd, state);
    Received r = conn.receive(std::chrono::milliseconds(kPollMs));
    if (r.status == Received::Status::kTimeout) continue;
    if (r.status == Received::Status::kClosed) {
      if (peer_eof && state.out_done.load()) return;  // both halves ended; the peer closed first
      state.fail("connection_lost", r.reason);
      reset_local(fd);
      return;
    }
    const Frame& f = r.frame;
    switch (f.header.type) {
      case FrameType::kTunnelData: {
        const auto v = TunnelDataView::decode(f.payload);
        std::span<const std::uint8_t> bytes;
        if (v && v->codec == 0) bytes = v->bytes;
        if (v && v->codec == 1 && decompressor.decompress(v->bytes, v->raw_len, decoded)) bytes = decoded;
        if (!v || bytes.size() != v->raw_len) {
          state.fail("malformed", "bad TUNNEL_DATA frame");
          send_error_and_close(conn, ErrorCode::kMalformed, "bad TUNNEL_DATA frame");
          reset_local(fd);
          return;
        }
        if (!write_all(fd, bytes.data(), bytes.size())) {
          state.fail("connection_lost", std::string("local socket: ") + std::strerror(errno));
          TunnelReset reset;
          reset.code = 9;
          conn.send(FrameType::kTunnelReset, 0, reset.encode());
          return;
        }
        entry.add_progress(static_cast<std::int64_t>(bytes.size()));
        break;
      }
      case FrameType::kTunnelEof:
        ::shutdown(fd, SHUT_WR);  // half-close: the other direction goes on
        peer_eof = true;
        break;
      case FrameType::kTunnelReset:
        state.fail("connection_lost", "the peer's end of the tunnel was reset");
        reset_local(fd);
        return;
      case FrameType::kPing:
        conn.send(FrameType::kPong, 0, f.payload);
        break;
      default:
        state.fail("unexpected_frame", std::string(frame_type_name(f.header.type)) + " frame in a tunnel");
        reset_local(fd);
        return;
    }
  }
}

bool parse_cidr(const std::string& cidr, int& family, std::array<std::uint8_t, 16>& net, int& bits) {
  const auto slash = cidr.find('/');
  const std::string addr = cidr.substr(0, slash);
  net.fill(0);
  if (::inet_pton(AF_INET, addr.c_str(), net.data()) == 1) {
    family = AF_INET;
    bits = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), net.data()) == 1) {
    family = AF_INET6;
    bits = 128;
  } else {
    return false;
  }
  if (slash != std::string::npos) {
    const int max = bits;
    const std::string prefix = cidr.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3 || prefix.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    bits = std::stoi(prefix);
    if (bits > max) return false;
  }
  return true;
}

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int bits) {
  for (int i = 0; i < bits; ++i) {
    const int byte = i / 8, bit = 7 - i % 8;
    if (((a[byte] >> bit) & 1) != ((b[byte] >> bit) & 1)) return false;
  }
  return true;
}

}  // namespace

TunnelEnd pump_tunnel(FrameConnection& conn, int local_fd, int compression, BandwidthGate* gate, std::uint64_t gate_key,
                      TransferEntry& entry) {
  int one = 1;
  ::setsockopt(local_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  PumpState state;
  const int level = compression < 0 ? 1 : compression;
  std::thread out([&] { pump_out(conn, local_fd, level, gate, gate_key, entry, state); });
  pump_in(conn, local_fd, entry, state);
  out.join();
  TunnelEnd end;
  if (state.failed.load()) {
    end.error_code = state.error_code;
    end.message = state.message;
    conn.close(std::chrono::seconds(1));  // lets a queued TUNNEL_RESET go out first
  } else {
    conn.close(std::chrono::seconds(5));
  }
  entry.update([&](sdk::TransferStatus& st) {
    st.stats.wire_bytes_sent = conn.wire_bytes_sent();
    st.stats.wire_bytes_received = conn.wire_bytes_received();
  });
  return end;
}

bool tunnel_target_allowed(const std::string& target, const std::vector<std::string>& cidrs) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(target, host, port) || port == 0) return false;
  std::array<std::uint8_t, 16> addr{};
  int family = 0;
  if (::inet_pton(AF_INET, host.c_str(), addr.data()) == 1) {
    family = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), addr.data()) == 1) {
    family = AF_INET6;
  } else {
    return false;  // names are not resolved: a peer must not steer DNS lookups here
  }
  for (const auto& cidr : cidrs) {
    int f = 0, bits = 0;
    std::array<std::uint8_t, 16> net{};
    if (parse_cidr(cidr, f, net, bits) && f == family && prefix_equal(addr.data(), net.data(), bits)) return true;
  }
  return false;
}

bool valid_cidr(const std::string& cidr) {
  int family = 0, bits = 0;
  std::array<std::uint8_t, 16> net{};
  return cidr.find('/') != std::string::npos && parse_cidr(cidr, family, net, bits);
}

bool is_loopback_address(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

int listen_loopback(const std::string& host, std::uint16_t& port, std::string& error) {
  if (!is_loopback_address(host)) {
    error = "listen_address: '" + host + "' is not a loopback address";
    return -1;
  }
  const bool v6 = host.find(':') != std::string::npos;
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  // A parse failure must never leave the socket bound to the wildcard address.
  bool parsed = false;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    parsed = ::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) == 1;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    parsed = ::inet_pton(AF_INET, host.c_str(), &a->sin_addr) == 1;
    len = sizeof *a;
  }
  if (!parsed) {
    error = "listen_address: '" + host + "' is not an IP address";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1) != 0) {
    error = std::string("cannot listen on ") + host + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

int connect_tcp(const std::string& address, int timeout_ms, std::string& error) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(address, host, port)) {
    error = "'" + address + "' is not HOST:PORT";
    return -1;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* a = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, host.c_str(), &a->sin_addr) == 1) {
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof *a;
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             ::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof *a6;
  } else {
    error = "'" + host + "' is not an IP address";
    return -1;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    error = std::string("connect to ") + address + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int soerr = 0;
  socklen_t soerr_len = sizeof soerr;
  if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0) {
    error = std::string("connect to ") + address + ": " + (soerr != 0 ? std::strerror(soerr) : "timed out");
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace novacron::transport

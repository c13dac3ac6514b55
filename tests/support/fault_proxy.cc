#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace novacron::testing {

FaultProxy::FaultProxy(const std::string& target_host, std::uint16_t target_port, Faults faults)
    : target_host_(target_host), target_port_(target_port), faults_(faults) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("fault proxy: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard lock(mu_);
  for (auto& t : relays_) t.join();
}

void FaultProxy::accept_loop() {
  bool first = true;
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::lock_guard lock(mu_);
    relays_.emplace_back([this, client, faulty = first] { relay(client, faulty); });
    first = false;
  }
}

void FaultProxy::relay(int client, bool faulty) {
  const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(target_port_);
  ::inet_pton(AF_INET, target_host_.c_str(), &addr.sin_addr);
  if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(server);
    ::close(client);
    return;
  }
  std::int64_t from_client = 0;
  char buf[64 * 1024];
  bool open = true;
  while (open && !stopping_) {
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(fds, 2, 100) <= 0) continue;
    for (int side = 0; side < 2 && open; ++side) {
      if ((fds[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const int from = side == 0 ? client : server;
      const int to = side == 0 ? server : client;
      ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0) {
        open = false;
        break;
      }
      if (side == 0 && faulty) {
        const std::int64_t cut = faults_.cut_after_client_bytes;
        if (cut >= 0 && from_client + n >= cut) {
          n = static_cast<ssize_t>(cut - from_client);
          if (n > 0) (void)::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
          faulted_ = true;
          open = false;
          break;
        }
        const std::int64_t flip = faults_.flip_client_byte_at;
        if (flip >= from_client && flip < from_client + n) {
          buf[flip - from_client] = static_cast<char>(buf[flip - from_client] ^ 0x01);
          faulted_ = true;
        }
        from_client += n;
      }
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
        if (w <= 0) {
          open = false;
          break;
        }
        done += w;
      }
    }
  }
  ::close(server);
  ::close(client);
}

}  // namespace novacron::testing

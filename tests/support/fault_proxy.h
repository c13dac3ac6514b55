// A TCP relay on loopback between two test nodes that can break the connection on purpose:
// cut it after N bytes from the client, or flip one byte in flight. It relays ciphertext, so
// a flip is caught by TLS and a cut looks like a network failure. Only the first connection
// is faulted; later ones (retries) pass untouched.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace novacron::testing {

class FaultProxy {
 public:
  struct Faults {
    std::int64_t cut_after_client_bytes = -1;  // -1 = never
    std::int64_t flip_client_byte_at = -1;     // -1 = never
  };

  FaultProxy(const std::string& target_host, std::uint16_t target_port, Faults faults);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  bool faulted() const { return faulted_.load(); }

 private:
  void accept_loop();
  void relay(int client, bool faulty);

  std::string target_host_;
  std::uint16_t target_port_;
  Faults faults_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<bool> faulted_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> relays_;
};

}  // namespace novacron::testing

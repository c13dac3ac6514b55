#include "helper_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace novacron::lxc {

sdk::Result<std::string> LineReader::next(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (buffer_.size() > kMaxMessageBytes) {
      return sdk::invalid_argument("message longer than " + std::to_string(kMaxMessageBytes) + " bytes");
    }
    int timeout_ms = -1;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return sdk::Status{sdk::StatusCode::kDeadlineExceeded, "no answer in time"};
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), INT_MAX));
    }
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return sdk::unavailable(std::string("poll: ") + std::strerror(errno));
    if (ready == 0) continue;  // the deadline check above ends the loop
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return sdk::unavailable(std::string("read: ") + std::strerror(errno));
    if (n == 0) return sdk::unavailable("closed");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

sdk::Status write_message(int fd, std::string_view message) {
  std::string data(message);
  data += '\n';
  size_t done = 0;
  while (done < data.size()) {
    // send() with MSG_NOSIGNAL on the socketpair; write() where fd is not a socket.
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sdk::unavailable(std::string("write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return sdk::Status::ok();
}

sdk::StatusCode status_code_from_name(std::string_view name) {
  for (int c = 1; c <= static_cast<int>(sdk::StatusCode::kInternal); ++c) {
    if (name == sdk::status_code_name(static_cast<sdk::StatusCode>(c))) return static_cast<sdk::StatusCode>(c);
  }
  return sdk::StatusCode::kInternal;
}

}  // namespace novacron::lxc

#include "tests/support/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace novacron::testing {

fs::path bin_dir() { return NOVACRON_TEST_BIN_DIR; }
fs::path inspect_helper() { return NOVACRON_TEST_INSPECT_HELPER; }
fs::path test_plugin_dir() { return NOVACRON_TEST_PLUGIN_DIR; }
fs::path bundled_plugin_dir() { return NOVACRON_TEST_BUNDLED_DIR; }
fs::path source_dir() { return NOVACRON_TEST_SOURCE_DIR; }

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/novacron-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  ::chmod(templ.c_str(), 0755);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests make folders read-only or swap in symlinks; make sure everything can go.
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0755);
  }
  fs::remove_all(path_, ec);
}

fs::path fixture(const std::string& id, const std::string& version) { return test_plugin_dir() / id / version; }

fs::path copy_fixture(const std::string& id, const fs::path& plugin_dir, const std::string& version) {
  fs::path dest = plugin_dir / id / version;
  fs::create_directories(dest);
  ::chmod(plugin_dir.c_str(), 0755);
  ::chmod((plugin_dir / id).c_str(), 0755);
  ::chmod(dest.c_str(), 0755);
  for (const auto& e : fs::directory_iterator(fixture(id, version))) {
    fs::copy_file(e.path(), dest / e.path().filename(), fs::copy_options::overwrite_existing);
    ::chmod((dest / e.path().filename()).c_str(), e.path().extension() == ".so" ? 0755 : 0644);
  }
  return dest;
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

void replace_file(const fs::path& p, const std::string& content) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  fs::path tmp = p.string() + ".replacing";
  write_file(tmp, content);
  ::chmod(tmp.c_str(), st.st_mode & 07777);
  fs::rename(tmp, p);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Process::Process(const std::vector<std::string>& argv, const fs::path& log_dir) {
  static int counter = 0;
  std::string tag = std::to_string(::getpid()) + "-" + std::to_string(++counter);
  out_ = log_dir / ("proc-" + tag + ".out");
  err_ = log_dir / ("proc-" + tag + ".err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // The child must not inherit blocked signals from a test runner.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (::posix_spawn(&pid_, argv[0].c_str(), &actions, &attr, args.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

bool Process::running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

bool Process::wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (out().find(text) != std::string::npos) return true;
    if (!running()) return out().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    return -1;
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

int Process::stop(int sig, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, sig);
  return wait(timeout);
}

std::string Process::out() const { return read_file(out_); }
std::string Process::err() const { return read_file(err_); }

SubprocessResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  SubprocessOptions options;
  options.timeout = timeout;
  options.output_limit = 16 << 20;
  auto r = run_subprocess(argv, options);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

int ready_port(const std::string& out) {
  std::smatch m;
  if (std::regex_search(out, m, std::regex("listening on https?://[^:]+:([0-9]+)"))) return std::stoi(m[1]);
  return 0;
}

std::unique_ptr<Process> start_novacrond(const fs::path& config, const fs::path& log_dir, int& port) {
  auto daemon = std::make_unique<Process>(
      std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", config.string()}, log_dir);
  port = daemon->wait_for_output("novacrond ready") ? ready_port(daemon->out()) : 0;
  return daemon;
}

namespace {

// Header fields of an HTTP response head (after its status line), names lower-cased.
std::map<std::string, std::string> parse_header_lines(const std::string& head_text) {
  std::map<std::string, std::string> headers;
  std::istringstream head(head_text);
  std::string line;
  std::getline(head, line);  // the status line
  while (std::getline(head, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    while (!value.empty() && value.back() == '\r') value.pop_back();
    headers[name] = value;
  }
  return headers;
}

}  // namespace

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
  HttpResult result;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return result;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  bool has_length =
      std::any_of(headers.begin(), headers.end(), [](const auto& h) { return h.first == "Content-Length"; });
  if (!has_length && (!body.empty() || method == "POST"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (size_t off = 0; off < req.size();) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading everything
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  std::smatch m;
  if (!std::regex_search(resp, m, std::regex("^HTTP/1.1 ([0-9]+)"))) return result;
  result.status = std::stoi(m[1]);
  auto end = resp.find("\r\n\r\n");
  result.headers = parse_header_lines(resp.substr(0, end));
  result.body = end == std::string::npos ? "" : resp.substr(end + 4);
  return result;
}

WsClient::WsClient(int port, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
  std::string req = "GET " + target +
                    " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  (void)::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (resp.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  std::smatch m;
  if (std::regex_search(resp, m, std::regex("^HTTP/1.1 ([0-9]+)"))) status_ = std::stoi(m[1]);
  auto end = resp.find("\r\n\r\n");
  if (end != std::string::npos) {
    headers_ = parse_header_lines(resp.substr(0, end));
    if (status_ == 101) {
      pending_ = resp.substr(end + 4);
    } else {
      body_ = resp.substr(end + 4);
      while ((std::chrono::steady_clock::now() < deadline)) {  // the rest of a small error body
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) break;
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        body_.append(buf, static_cast<size_t>(n));
      }
    }
  }
}

WsClient::~WsClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool WsClient::read_exact(char* out, size_t n, std::chrono::steady_clock::time_point deadline) {
  size_t got = 0;
  size_t from_pending = std::min(n, pending_.size());
  std::memcpy(out, pending_.data(), from_pending);
  pending_.erase(0, from_pending);
  got = from_pending;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = ::read(fd_, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

std::string WsClient::next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    unsigned char head[2];
    if (!read_exact(reinterpret_cast<char*>(head), 2, deadline)) return "";
    int opcode = head[0] & 0x0f;
    uint64_t len = head[1] & 0x7f;
    if (len == 126) {
      unsigned char ext[2];
      if (!read_exact(reinterpret_cast<char*>(ext), 2, deadline)) return "";
      len = (uint64_t{ext[0]} << 8) | ext[1];
    } else if (len == 127) {
      unsigned char ext[8];
      if (!read_exact(reinterpret_cast<char*>(ext), 8, deadline)) return "";
      len = 0;
      for (unsigned char b : ext) len = (len << 8) | b;
    }
    std::string payload(len, '\0');
    if (len > 0 && !read_exact(payload.data(), len, deadline)) return "";
    if (opcode == 0x1) return payload;  // text
    if (opcode == 0x8) return "";       // close
  }
}

std::string http_get(int port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  std::smatch m;
  if (!std::regex_search(resp, m, std::regex("^HTTP/1.1 ([0-9]+)"))) return "";
  auto body = resp.find("\r\n\r\n");
  return m[1].str() + " " + (body == std::string::npos ? "" : resp.substr(body + 4));
}

int unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace novacron::testing

// Shared helpers for NovaCron's tests: temporary folders, paths of built artifacts, copying
// test plugins into plugin dirs, and running real novacrond/novacron processes.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/common/subprocess.h"

namespace novacron::testing {

namespace fs = std::filesystem;

// Paths compiled in by CMake.
fs::path bin_dir();             // novacrond, novacron
fs::path inspect_helper();      // novacron-plugin-inspect
fs::path test_plugin_dir();     // <id>/<version>/ of the fixtures
fs::path bundled_plugin_dir();  // the host's bundled plugins
fs::path source_dir();          // the repository

// A fresh folder (0755) under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

// The fixture folder <test_plugin_dir>/<id>/<version>.
fs::path fixture(const std::string& id, const std::string& version = "1.0.0");
// Copies a fixture folder to <plugin_dir>/<id>/<version> (0755 dirs, library 0755, json 0644).
fs::path copy_fixture(const std::string& id, const fs::path& plugin_dir, const std::string& version = "1.0.0");

void write_file(const fs::path& p, const std::string& content);
// Replaces `p` by a new file (new inode, same mode): never rewrite a library this process has
// mapped in place, that crashes the process instead of testing anything.
void replace_file(const fs::path& p, const std::string& content);
std::string read_file(const fs::path& p);

// A process running in the background with its stdout and stderr in files.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const fs::path& log_dir);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Waits until stdout contains `text` or the process exits; false on timeout or exit.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Sends `sig` and waits for exit; returns the exit status (or 128+signal).
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits for exit without signalling.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool running();
  std::string out() const;
  std::string err() const;
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int status_ = -1;
  fs::path out_, err_;
};

// Runs a command to completion (no shell).
SubprocessResult run(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Parses "listening on http://ADDR:PORT" from novacrond's ready line; 0 if absent.
int ready_port(const std::string& out);

// A loopback TCP port nothing listens on (bound, then closed): for configs that need a port
// before the daemon starts, or a peer that is down.
int unused_loopback_port();

// Starts novacrond on `config` (its output in `log_dir`) and waits for its ready line.
// `port` is the port it listens on, 0 when it did not become ready; the process is
// returned either way so that the caller can print its stderr:
//   daemon_ = start_novacrond(dir_ / "cfg.json", dir_.path(), port_);
//   ASSERT_GT(port_, 0) << daemon_->err();
std::unique_ptr<Process> start_novacrond(const fs::path& config, const fs::path& log_dir, int& port);

// A minimal HTTP GET over loopback; returns "STATUS BODY" or "" on connection failure.
std::string http_get(int port, const std::string& target);

struct HttpResult {
  int status = 0;                              // 0: no answer
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};
// One HTTP/1.1 request over loopback (Connection: close).
HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::string& body = "");

// A minimal WebSocket client for the event stream tests (RFC 6455: handshake, unmasked
// server text frames; client frames are not needed).
class WsClient {
 public:
  // Connects and performs the handshake; status() is 101 on success, else the HTTP status
  // (and body() the answer's body).
  WsClient(int port, const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers);
  ~WsClient();
  int status() const { return status_; }
  const std::string& body() const { return body_; }
  const std::map<std::string, std::string>& headers() const { return headers_; }
  // The next text message, or "" after `timeout` or when the connection ended.
  std::string next(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool read_exact(char* out, size_t n, std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  int status_ = 0;
  std::string body_;
  std::map<std::string, std::string> headers_;  // names lower-cased
  std::string pending_;                         // bytes read past the handshake
};

}  // namespace novacron::testing

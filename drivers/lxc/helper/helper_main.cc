// novacron-lxc-helper: runs liblxc calls for the LXC driver (protocol: ../helper_protocol.h).
//
//   novacron-lxc-helper --lxcpath /var/lib/novacron/lxc
//
// Reads requests on stdin and answers on stdout, one JSON line each, until stdin closes.
// Started by the driver (never by hand in production); handy for debugging:
//   echo '{"op":"list"}' | novacron-lxc-helper --lxcpath /tmp/lxc
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "helper_protocol.h"
#include "lxc_operations.h"

namespace {

int usage() {
  std::fprintf(stderr, "usage: novacron-lxc-helper --lxcpath ABSOLUTE_DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Run from a memfd, the process would be named "memfd:..." in ps and top.
  ::prctl(PR_SET_NAME, "nc-lxc-helper");
  novacron::lxc::HelperContext ctx;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--lxcpath") != 0 || i + 1 >= argc) return usage();
    ctx.lxcpath = argv[++i];
  }
  struct stat st {};
  if (ctx.lxcpath.empty() || ctx.lxcpath[0] != '/' || ::stat(ctx.lxcpath.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "novacron-lxc-helper: --lxcpath must name an existing absolute folder\n");
    return usage();
  }
  ctx.cgroup = novacron::lxc::detect_cgroup_layout();
  // Template scripts and liblxc's children must not inherit the channel: it moves to
  // close-on-exec descriptors and stdin/stdout become /dev/null.
  int in = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (in < 0 || out < 0 || devnull < 0 || ::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(devnull, STDOUT_FILENO) < 0) {
    std::perror("novacron-lxc-helper: setting up descriptors");
    return 1;
  }
  novacron::lxc::LineReader reader(in);
  for (;;) {
    auto line = reader.next();
    if (!line.is_ok()) return line.status().message() == "closed" ? 0 : 1;
    nlohmann::json request = nlohmann::json::parse(line.value(), nullptr, /*allow_exceptions=*/false);
    nlohmann::json response =
        request.is_discarded()
            ? nlohmann::json{{"ok", false}, {"code", "invalid_argument"}, {"error", "request is not valid JSON"}}
            : novacron::lxc::handle_request(ctx, request);
    if (!novacron::lxc::write_message(out, novacron::lxc::response_text(response)).is_ok()) return 1;
  }
}

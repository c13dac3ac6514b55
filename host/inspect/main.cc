// novacron-plugin-inspect LIBRARY: inspects one plugin library in its own process and prints
// a JSON report (see host/plugins/inspector.h). Run by the host and the CLI, not by people.
#include <cstdio>
#include <string>

#include "host/plugins/inspector.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: novacron-plugin-inspect LIBRARY\n");
    return 2;
  }
  return novacron::run_inspection(argv[1]);
}

// libFuzzer target: the bounded ELF checker runs in-process on files nobody has vouched for
// yet (validate, install), so no input may crash it, hang it or make it allocate without
// bound. Seeds: the built plugins (tests/fuzz/CMakeLists.txt).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "host/plugins/elf_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = ::memfd_create("elf-fuzz", MFD_CLOEXEC);
  if (::ftruncate(fd, 0) != 0) return 0;
  if (size > 0 && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  (void)novacron::check_plugin_elf(fd);
  return 0;
}

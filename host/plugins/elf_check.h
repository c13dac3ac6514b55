// A bounds-checked look at an ELF shared object, done in-process before dlopen.
//
// Boost 1.81's library_info trusts the section headers it reads (a crafted file makes it
// allocate or read absurd amounts), so the host never runs it on an unverified file. This
// checker reads each table at most once and never more than the file holds (tables are also
// capped at 64 MiB), validates every offset and size against the file before using it, and answers two questions: is
// this a shared object for this machine, and does it export the NovaCron entry alias from the "boostdll" section.
#pragma once

#include <cstdint>
#include <string>

#include "host/common/error.h"

namespace novacron {

struct ElfFacts {
  std::uint64_t file_size = 0;
  std::uint16_t section_count = 0;
  bool has_entry_symbol = false;        // NOVACRON_PLUGIN_ENTRY_SYMBOL exported, defined
  bool entry_in_alias_section = false;  // ... and placed in the "boostdll" section
};

// Checks the ELF file open at `fd` (read with pread; the offset is not moved).
// Errors: "not_elf", "elf_truncated", "elf_malformed", "elf_wrong_machine".
Expected<ElfFacts> check_elf(int fd);

// check_elf() plus: the entry symbol must be present and in the alias section.
// Error: "missing_entry_symbol".
Expected<ElfFacts> check_plugin_elf(int fd);

}  // namespace novacron

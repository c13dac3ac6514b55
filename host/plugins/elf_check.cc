#include "host/plugins/elf_check.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "novacron/sdk/descriptor.hpp"

namespace novacron {
namespace {

#if defined(__x86_64__)
constexpr std::uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr std::uint16_t kHostMachine = EM_AARCH64;
#else
#error "add this architecture's ELF machine number"
#endif

// Upper bounds on what a plugin may have: far above any real plugin, far below what makes
// reading the tables expensive.
constexpr std::uint64_t kMaxSections = 4096;
constexpr std::uint64_t kMaxDynSymBytes = 64ull << 20;
constexpr std::uint64_t kMaxStrtabBytes = 64ull << 20;

Error malformed(const std::string& what) { return Error{"elf_malformed", "malformed ELF file: " + what}; }

// Reads exactly `size` bytes at `offset`, after checking both against the file size.
Expected<void> read_at(int fd, std::uint64_t file_size, std::uint64_t offset, void* out, std::uint64_t size,
                       const char* what) {
  if (offset > file_size || size > file_size - offset) {
    return make_error("elf_truncated", std::string("ELF file is truncated: ") + what + " at offset " +
                                           std::to_string(offset) + " (+" + std::to_string(size) +
                                           " bytes) lies beyond its end (" + std::to_string(file_size) + " bytes)");
  }
  auto* p = static_cast<char*>(out);
  std::uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, p + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("io", std::string("read failed: ") + std::strerror(errno));
    done += static_cast<std::uint64_t>(n);
  }
  return {};
}

}  // namespace

Expected<ElfFacts> check_elf(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error("io", std::strerror(errno));
  ElfFacts facts;
  facts.file_size = static_cast<std::uint64_t>(st.st_size);

  Elf64_Ehdr eh{};
  if (facts.file_size < 4) return make_error("not_elf", "not an ELF file (too short to have the ELF magic)");
  unsigned char magic[4];
  if (auto r = read_at(fd, facts.file_size, 0, magic, 4, "ELF magic"); !r) return tl::unexpected(r.error());
  if (std::memcmp(magic, ELFMAG, SELFMAG) != 0) return make_error("not_elf", "not an ELF file (bad magic)");
  if (auto r = read_at(fd, facts.file_size, 0, &eh, sizeof eh, "ELF header"); !r) return tl::unexpected(r.error());
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return make_error("elf_wrong_machine", "not a 64-bit little-endian ELF file");
  }
  if (eh.e_type != ET_DYN) return make_error("elf_malformed", "not a shared object (ELF type is not ET_DYN)");
  if (eh.e_machine != kHostMachine) {
    return make_error("elf_wrong_machine", "built for ELF machine " + std::to_string(eh.e_machine) + ", this host is " +
                                               std::to_string(kHostMachine));
  }
  // Program headers: what dlopen maps. Each loadable segment must lie inside the file.
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > kMaxSections) {
    return tl::unexpected(malformed("program header table is inconsistent"));
  }
  std::vector<Elf64_Phdr> segments(eh.e_phnum);
  if (auto r = read_at(fd, facts.file_size, eh.e_phoff, segments.data(), std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr),
                       "program header table");
      !r) {
    return tl::unexpected(r.error());
  }
  for (const Elf64_Phdr& ph : segments) {
    if (ph.p_type != PT_LOAD && ph.p_type != PT_DYNAMIC) continue;
    if (ph.p_offset > facts.file_size || ph.p_filesz > facts.file_size - ph.p_offset || ph.p_filesz > ph.p_memsz) {
      return make_error("elf_truncated", "ELF segment at offset " + std::to_string(ph.p_offset) + " (" +
                                             std::to_string(ph.p_filesz) + " bytes) lies beyond the end of the file");
    }
  }

  if (eh.e_shentsize != sizeof(Elf64_Shdr)) return tl::unexpected(malformed("section header size is not 64"));
  if (eh.e_shnum == 0 || eh.e_shnum > kMaxSections) {
    return tl::unexpected(malformed("section count " + std::to_string(eh.e_shnum) + " out of range"));
  }
  if (eh.e_shstrndx >= eh.e_shnum) return tl::unexpected(malformed("section name table index out of range"));
  facts.section_count = eh.e_shnum;

  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  if (auto r = read_at(fd, facts.file_size, eh.e_shoff, sections.data(), std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr),
                       "section header table");
      !r) {
    return tl::unexpected(r.error());
  }
  // Every section with file contents must lie inside the file.
  for (size_t i = 0; i < sections.size(); ++i) {
    const Elf64_Shdr& s = sections[i];
    if (s.sh_type == SHT_NOBITS || s.sh_type == SHT_NULL) continue;
    if (s.sh_offset > facts.file_size || s.sh_size > facts.file_size - s.sh_offset) {
      return make_error("elf_truncated", "ELF section " + std::to_string(i) + " (offset " +
                                             std::to_string(s.sh_offset) + ", size " + std::to_string(s.sh_size) +
                                             ") lies beyond the end of the file (" + std::to_string(facts.file_size) +
                                             " bytes)");
    }
  }

  // Section names, to find the alias section.
  const Elf64_Shdr& shstr = sections[eh.e_shstrndx];
  if (shstr.sh_size > kMaxStrtabBytes) return tl::unexpected(malformed("section name table too large"));
  std::string names(shstr.sh_size, '\0');
  if (auto r = read_at(fd, facts.file_size, shstr.sh_offset, names.data(), shstr.sh_size, "section names"); !r) {
    return tl::unexpected(r.error());
  }
  auto name_at = [&](std::uint64_t off, const std::string& table) -> std::string_view {
    if (off >= table.size()) return {};
    return std::string_view(table.c_str() + off);  // table is NUL-terminated by std::string
  };

  // The dynamic symbol table: what dlopen exports. A shared object has exactly one; more
  // would only multiply how much a crafted file makes us read.
  int dynsym_tables = 0;
  for (const Elf64_Shdr& s : sections) dynsym_tables += s.sh_type == SHT_DYNSYM ? 1 : 0;
  if (dynsym_tables > 1) return tl::unexpected(malformed(std::to_string(dynsym_tables) + " dynamic symbol tables"));
  for (size_t i = 0; i < sections.size(); ++i) {
    const Elf64_Shdr& s = sections[i];
    if (s.sh_type != SHT_DYNSYM) continue;
    if (s.sh_entsize != sizeof(Elf64_Sym) || s.sh_size > kMaxDynSymBytes || s.sh_link >= sections.size()) {
      return tl::unexpected(malformed("dynamic symbol table header is inconsistent"));
    }
    const Elf64_Shdr& strtab = sections[s.sh_link];
    if (strtab.sh_size > kMaxStrtabBytes) return tl::unexpected(malformed("dynamic string table too large"));
    std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
    std::string strings(strtab.sh_size, '\0');
    if (auto r =
            read_at(fd, facts.file_size, s.sh_offset, syms.data(), syms.size() * sizeof(Elf64_Sym), "dynamic symbols");
        !r) {
      return tl::unexpected(r.error());
    }
    if (auto r = read_at(fd, facts.file_size, strtab.sh_offset, strings.data(), strtab.sh_size, "dynamic strings");
        !r) {
      return tl::unexpected(r.error());
    }
    for (const Elf64_Sym& sym : syms) {
      if (name_at(sym.st_name, strings) != NOVACRON_PLUGIN_ENTRY_SYMBOL) continue;
      bool exported = sym.st_shndx != SHN_UNDEF && ELF64_ST_BIND(sym.st_info) == STB_GLOBAL &&
                      ELF64_ST_VISIBILITY(sym.st_other) == STV_DEFAULT;
      facts.has_entry_symbol = exported;
      if (exported && sym.st_shndx < sections.size()) {
        facts.entry_in_alias_section = name_at(sections[sym.st_shndx].sh_name, names) == NOVACRON_PLUGIN_ALIAS_SECTION;
      }
    }
  }
  return facts;
}

Expected<ElfFacts> check_plugin_elf(int fd) {
  auto facts = check_elf(fd);
  if (!facts) return facts;
  if (!facts->has_entry_symbol) {
    return make_error("missing_entry_symbol", std::string("the library does not export the entry symbol ") +
                                                  NOVACRON_PLUGIN_ENTRY_SYMBOL +
                                                  " (was it built with NOVACRON_PLUGIN(...)?)");
  }
  if (!facts->entry_in_alias_section) {
    return make_error("missing_entry_symbol", std::string("the entry symbol ") + NOVACRON_PLUGIN_ENTRY_SYMBOL +
                                                  " is not in the \"boostdll\" alias section");
  }
  return facts;
}

}  // namespace novacron

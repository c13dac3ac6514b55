#include "tests/support/archive_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <stdexcept>

#include "tests/support/test_env.h"

namespace novacron::testing {

void write_archive(const std::filesystem::path& file, const std::vector<ArchiveEntry>& entries, bool zstd) {
  archive* a = archive_write_new();
  if (zstd) archive_write_add_filter_zstd(a);
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, file.c_str()) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a));
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_perm(entry, static_cast<mode_t>(e.mode));
    switch (e.type) {
      case ArchiveEntry::Type::kFile:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
        break;
      case ArchiveEntry::Type::kDir:
        archive_entry_set_filetype(entry, AE_IFDIR);
        break;
      case ArchiveEntry::Type::kSymlink:
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_symlink(entry, e.target.c_str());
        break;
      case ArchiveEntry::Type::kHardlink:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_hardlink(entry, e.target.c_str());
        break;
    }
    archive_write_header(a, entry);
    if (e.type == ArchiveEntry::Type::kFile) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::vector<ArchiveEntry> entries_of_folder(const std::filesystem::path& folder, const std::string& prefix) {
  std::vector<ArchiveEntry> out;
  out.push_back({prefix, ArchiveEntry::Type::kDir, "", "", 0755});
  for (const auto& e : std::filesystem::directory_iterator(folder)) {
    bool lib = e.path().extension() == ".so";
    out.push_back({prefix + "/" + e.path().filename().string(), ArchiveEntry::Type::kFile, read_file(e.path()), "",
                   lib ? 0755 : 0644});
  }
  return out;
}

}  // namespace novacron::testing

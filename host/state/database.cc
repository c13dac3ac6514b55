#include "host/state/database.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace novacron {
namespace {

Error sqlite_error(sqlite3* db, std::string_view what) {
  return Error{"state_store", std::string(what) + ": " + sqlite3_errmsg(db)};
}

}  // namespace

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}
Statement& Statement::bind_real(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}
Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Expected<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return tl::unexpected(sqlite_error(db_, "statement failed"));
}

Expected<void> Statement::run() {
  for (;;) {
    auto more = step();
    if (!more) return tl::unexpected(more.error());
    if (!*more) return {};
  }
}

std::string Statement::text(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}
std::int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Expected<std::unique_ptr<Database>> Database::open(const std::filesystem::path& file,
                                                   const std::vector<Migration>& migrations) {
  // Create the file 0600 ourselves: SQLite would create it with the process umask.
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("state_store", file.string() + ": " + std::strerror(errno));
  ::close(fd);

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return make_error("state_store", file.string() + ": " + msg);
  }
  std::unique_ptr<Database> db(new Database(raw, file));
  sqlite3_busy_timeout(raw, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    if (auto r = db->exec(pragma); !r) return tl::unexpected(r.error());
  }
  if (auto r = db->migrate(migrations); !r) {
    return make_error("state_store", file.string() + ": " + r.error().message);
  }
  return db;
}

Database::~Database() { sqlite3_close(db_); }

Expected<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
    return tl::unexpected(sqlite_error(db_, "prepare"));
  }
  return Statement(db_, stmt);
}

int Database::changes() const { return sqlite3_changes(db_); }

Expected<void> Database::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return make_error("state_store", msg);
  }
  return {};
}

Expected<void> Database::transaction(const std::function<Expected<void>()>& fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
  Expected<void> result;
  try {
    result = fn();
  } catch (...) {
    (void)exec("ROLLBACK");
    throw;
  }
  if (!result) {
    (void)exec("ROLLBACK");
    return result;
  }
  if (auto r = exec("COMMIT"); !r) {
    (void)exec("ROLLBACK");
    return r;
  }
  return {};
}

Expected<void> Database::migrate(const std::vector<Migration>& migrations) {
  if (auto r = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                    "applied_at INTEGER NOT NULL)");
      !r) {
    return r;
  }
  auto current = with_lock([&]() -> Expected<int> {
    auto stmt = prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (!stmt) return tl::unexpected(stmt.error());
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    return static_cast<int>(stmt->integer(0));
  });
  if (!current) return tl::unexpected(current.error());
  if (*current > static_cast<int>(migrations.size())) {
    return make_error("state_store_too_new", "schema version " + std::to_string(*current) +
                                                 " is newer than this host supports (" +
                                                 std::to_string(migrations.size()) + "); use a newer novacrond");
  }
  for (int v = *current + 1; v <= static_cast<int>(migrations.size()); ++v) {
    auto r = transaction([&]() -> Expected<void> {
      if (auto e = exec(migrations[static_cast<size_t>(v - 1)]); !e) return e;
      auto stmt = prepare("INSERT INTO schema_version(version, applied_at) VALUES (?, strftime('%s','now'))");
      if (!stmt) return tl::unexpected(stmt.error());
      stmt->bind(1, static_cast<std::int64_t>(v));
      return stmt->run();
    });
    if (!r) {
      return make_error("state_store",
                        "migration to schema version " + std::to_string(v) + " failed: " + r.error().message);
    }
  }
  schema_version_ = static_cast<int>(migrations.size());
  return {};
}

}  // namespace novacron

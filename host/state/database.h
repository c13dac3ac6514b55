// A small, strict wrapper over SQLite: one connection, serialised by a mutex, prepared
// statements with bound parameters only (no SQL built from input), WAL journal, and
// forward-only schema migrations recorded in a schema_version table.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/error.h"

namespace novacron {

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Binds parameters by position, starting at 1.
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind(int index, std::int64_t value);
  Statement& bind_null(int index);
  Statement& bind_real(int index, double value);

  // Advances; true when a row is available, false when done. Errors become an Error.
  Expected<bool> step();
  // Runs to completion, ignoring rows.
  Expected<void> run();

  std::string text(int column) const;
  std::int64_t integer(int column) const;
  double real(int column) const;
  bool is_null(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // A migration takes the schema from version N-1 to N, where N is its index + 1.
  using Migration = std::string;

  // Opens (creating if needed, mode 0600) the database and applies pending migrations in one
  // transaction each. Refuses a database whose schema is newer than `migrations` knows: a
  // downgraded host must not touch state written by a newer one.
  static Expected<std::unique_ptr<Database>> open(const std::filesystem::path& file,
                                                  const std::vector<Migration>& migrations);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs `fn` with the connection locked.
  template <typename Fn>
  auto with_lock(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    return fn();
  }

  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT with the connection locked; rolls back when
  // `fn` returns an error, so nothing is half-written.
  Expected<void> transaction(const std::function<Expected<void>()>& fn);

  // Must be called with the lock held (inside with_lock or transaction).
  Expected<Statement> prepare(std::string_view sql);
  Expected<void> exec(std::string_view sql);
  // Rows changed by the last statement (must be called with the lock held).
  int changes() const;

  int schema_version() const { return schema_version_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  Expected<void> migrate(const std::vector<Migration>& migrations);

  sqlite3* db_;
  std::filesystem::path path_;
  std::mutex mutex_;
  int schema_version_ = 0;
};

}  // namespace novacron

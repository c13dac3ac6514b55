#include "host/state/database.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "host/state/kv_store.h"
#include "host/state/schema.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using testing::TempDir;

TEST(DatabaseTest, CreatesPrivateFileAndAppliesMigrationsOnce) {
  TempDir dir;
  {
    auto db = Database::open(dir / "s.db", {"CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT"});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    EXPECT_EQ((*db)->schema_version(), 2);
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir / "s.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Reopening with one more migration applies only that one.
  auto db = Database::open(
      dir / "s.db", {"CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT", "CREATE TABLE b (z INTEGER)"});
  ASSERT_TRUE(db.has_value()) << db.error().message;
  EXPECT_EQ((*db)->schema_version(), 3);
  auto journal = (*db)->with_lock([&] {
    auto s = (*db)->prepare("PRAGMA journal_mode");
    (void)s->step();
    return s->text(0);
  });
  EXPECT_EQ(journal, "wal");
}

TEST(DatabaseTest, RefusesSchemaNewerThanTheHost) {
  TempDir dir;
  ASSERT_TRUE(Database::open(dir / "s.db", {"CREATE TABLE a (x)", "CREATE TABLE b (x)"}).has_value());
  auto old_host = Database::open(dir / "s.db", {"CREATE TABLE a (x)"});
  ASSERT_FALSE(old_host.has_value());
  EXPECT_EQ(old_host.error().code, "state_store");
  EXPECT_NE(old_host.error().message.find("newer than this host supports"), std::string::npos);
}

TEST(DatabaseTest, FailedMigrationLeavesSchemaUntouched) {
  TempDir dir;
  ASSERT_TRUE(Database::open(dir / "s.db", {"CREATE TABLE a (x)"}).has_value());
  auto broken = Database::open(dir / "s.db", {"CREATE TABLE a (x)", "CREATE TABLE b (x); THIS IS NOT SQL"});
  ASSERT_FALSE(broken.has_value());
  EXPECT_NE(broken.error().message.find("migration to schema version 2"), std::string::npos);
  auto db = Database::open(dir / "s.db", {"CREATE TABLE a (x)"});
  ASSERT_TRUE(db.has_value());
  // Table b from the failed migration was rolled back.
  EXPECT_FALSE((*db)->with_lock([&] { return (*db)->exec("SELECT * FROM b"); }).has_value());
}

TEST(DatabaseTest, TransactionRollsBackOnError) {
  TempDir dir;
  auto db = std::move(*Database::open(dir / "s.db", {"CREATE TABLE a (x INTEGER)"}));
  auto r = db->transaction([&]() -> Expected<void> {
    (void)db->exec("INSERT INTO a VALUES (1)");
    return make_error("test", "abort");
  });
  EXPECT_FALSE(r.has_value());
  auto count = db->with_lock([&] {
    auto s = db->prepare("SELECT COUNT(*) FROM a");
    (void)s->step();
    return s->integer(0);
  });
  EXPECT_EQ(count, 0);
}

TEST(KvStoreTest, NamespacedPutGetListDelete) {
  TempDir dir;
  auto db = std::move(*open_host_database(dir.path()));
  KvStore kv(*db);
  ASSERT_TRUE(kv.put("plugin.a", "cfg/1", "one").has_value());
  ASSERT_TRUE(kv.put("plugin.a", "cfg/2", std::string("t\0wo", 4)).has_value());
  ASSERT_TRUE(kv.put("plugin.a", "cfg%", "pct").has_value());
  ASSERT_TRUE(kv.put("plugin.b", "cfg/1", "other").has_value());
  EXPECT_EQ(kv.get("plugin.a", "cfg/1")->value(), "one");
  EXPECT_EQ(kv.get("plugin.a", "cfg/2")->value(), std::string("t\0wo", 4));
  EXPECT_EQ(kv.get("plugin.b", "cfg/1")->value(), "other");
  EXPECT_FALSE(kv.get("plugin.c", "cfg/1")->has_value());
  EXPECT_EQ(*kv.list("plugin.a", "cfg/"), (std::vector<std::string>{"cfg/1", "cfg/2"}));
  EXPECT_EQ(*kv.list("plugin.a", "cfg%"), (std::vector<std::string>{"cfg%"}));  // no LIKE wildcards
  ASSERT_TRUE(kv.put("plugin.a", "cfg/1", "uno").has_value());
  EXPECT_EQ(kv.get("plugin.a", "cfg/1")->value(), "uno");
  ASSERT_TRUE(kv.remove("plugin.a", "cfg/1").has_value());
  EXPECT_FALSE(kv.get("plugin.a", "cfg/1")->has_value());
}

TEST(KvStoreTest, RefusesOversizedValuesWithoutTouchingStoredOnes) {
  TempDir dir;
  auto db = std::move(*open_host_database(dir.path()));
  KvStore kv(*db);
  ASSERT_TRUE(kv.put("p", "k", "kept").has_value());
  auto r = kv.put("p", "k", std::string(KvStore::kMaxValueBytes + 1, 'x'));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "invalid_argument");
  EXPECT_EQ(kv.get("p", "k")->value(), "kept");
  EXPECT_FALSE(kv.put("p", "", "v").has_value());
}

}  // namespace
}  // namespace novacron

#include "host/operations/operation_manager.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "host/state/schema.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using testing::TempDir;

class OperationManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = std::move(*open_host_database(dir_.path())); }

  Operation wait_for(OperationManager& m, const std::string& id) {
    std::promise<Operation> p;
    m.wait(id, std::chrono::seconds(10), [&p](Operation op) { p.set_value(std::move(op)); });
    return p.get_future().get();
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  EventBus events_;
  ExecutorPools pools_{1, 2};
};

TEST_F(OperationManagerTest, SuccessFailureAndEvents) {
  OperationManager m(*db_, events_, pools_);
  auto ok = m.start("test.ok", "thing/a", "tester", [](OperationContext& ctx) -> Expected<nlohmann::json> {
    ctx.report_progress(0.5, "half way");
    return nlohmann::json{{"answer", 42}};
  });
  ASSERT_TRUE(ok.has_value());
  Operation done = wait_for(m, ok->id);
  EXPECT_EQ(done.state, "succeeded");
  EXPECT_EQ(done.result["answer"], 42);
  EXPECT_EQ(done.progress, 1.0);
  auto bad = m.start("test.bad", "thing/b", "tester",
                     [](OperationContext&) -> Expected<nlohmann::json> { return make_error("boom", "it broke"); });
  Operation failed = wait_for(m, bad->id);
  EXPECT_EQ(failed.state, "failed");
  EXPECT_EQ(failed.error_code, "boom");
  // Persisted: readable after the manager is gone.
  OperationManager again(*db_, events_, pools_);
  EXPECT_EQ(again.get(ok->id)->state, "succeeded");
  EXPECT_EQ(again.get(bad->id)->error_message, "it broke");
  std::vector<std::string> types;
  const auto seen = events_.since(0);
  for (const auto& e : *seen) types.push_back(e.type);
  EXPECT_NE(std::find(types.begin(), types.end(), "operation.running"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "operation.failed"), types.end());
}

TEST_F(OperationManagerTest, OneOperationPerObjectAndCancel) {
  OperationManager m(*db_, events_, pools_);
  std::atomic<bool> release{false};
  auto slow = m.start("test.slow", "thing/x", "tester", [&](OperationContext& ctx) -> Expected<nlohmann::json> {
    while (!release && !ctx.cancel_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.cancel_requested()) return make_error("cancelled", "stopped on request");
    return nlohmann::json{};
  });
  ASSERT_TRUE(slow.has_value());
  auto busy =
      m.start("test.other", "thing/x", "tester", [](OperationContext&) -> Expected<nlohmann::json> { return {}; });
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code, "conflict");
  EXPECT_NE(busy.error().message.find(slow->id), std::string::npos);
  // Another object is not blocked.
  auto other =
      m.start("test.other", "thing/y", "tester", [](OperationContext&) -> Expected<nlohmann::json> { return {}; });
  EXPECT_TRUE(other.has_value());
  ASSERT_TRUE(m.cancel(slow->id).has_value());
  EXPECT_EQ(wait_for(m, slow->id).state, "cancelled");
  EXPECT_EQ(m.cancel(slow->id).error().code, "finished");
  EXPECT_EQ(m.cancel("op-none").error().code, "not_found");
  release = true;
}

TEST_F(OperationManagerTest, WaitTimesOutWithTheCurrentState) {
  OperationManager m(*db_, events_, pools_);
  std::atomic<bool> release{false};
  auto slow = m.start("test.slow", "thing/z", "tester", [&](OperationContext&) -> Expected<nlohmann::json> {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return nlohmann::json{};
  });
  std::promise<Operation> p;
  m.wait(slow->id, std::chrono::milliseconds(50), [&p](Operation op) { p.set_value(std::move(op)); });
  EXPECT_EQ(p.get_future().get().state, "running");
  release = true;
  EXPECT_EQ(wait_for(m, slow->id).state, "succeeded");
}

TEST_F(OperationManagerTest, RunningOperationsOfADeadProcessBecomeInterrupted) {
  {
    ASSERT_TRUE(db_->with_lock([&] {
                     return db_->exec(
                         "INSERT INTO operations(id, kind, object, state, created_at, updated_at) VALUES "
                         "('op-0000000000001-0000-00000000', 'test.x', 'thing/q', 'running', 1, 1)");
                   })
                    .has_value());
  }
  OperationManager m(*db_, events_, pools_);
  auto n = m.recover();
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1u);
  auto op = m.get("op-0000000000001-0000-00000000");
  ASSERT_TRUE(op.has_value());
  EXPECT_EQ(op->state, "interrupted");
  EXPECT_EQ(op->error_code, "interrupted");
  // The object is not considered busy by the new process.
  EXPECT_TRUE(m.start("test.y", "thing/q", "t", [](OperationContext&) -> Expected<nlohmann::json> { return {}; }));
}

TEST_F(OperationManagerTest, AFinalStateTheStoreRefusesIsServedAndStoredLater) {
  OperationManager m(*db_, events_, pools_);
  // The real store refuses final states (as a full disk would), through a trigger.
  auto exec = [&](const char* sql) { return db_->with_lock([&] { return db_->exec(sql); }); };
  ASSERT_TRUE(exec("CREATE TRIGGER refuse_end BEFORE INSERT ON operations WHEN NEW.state != 'running' "
                   "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
                  .has_value());
  auto op = m.start("test.ok", "thing/u", "tester", [](OperationContext&) -> Expected<nlohmann::json> {
    return nlohmann::json{{"ok", true}};
  });
  ASSERT_TRUE(op.has_value());
  EXPECT_EQ(wait_for(m, op->id).state, "succeeded");
  // Not stored, yet this process answers with the final state, in get() and in list().
  EXPECT_EQ(OperationManager(*db_, events_, pools_).get(op->id)->state, "running");
  EXPECT_EQ(m.get(op->id)->state, "succeeded");
  auto listed = m.list("", 10);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].state, "succeeded");
  // The object is free again, and once the store accepts writes the next operation stores both.
  ASSERT_TRUE(exec("DROP TRIGGER refuse_end").has_value());
  auto next = m.start("test.ok", "thing/u", "tester",
                      [](OperationContext&) -> Expected<nlohmann::json> { return nlohmann::json::object(); });
  ASSERT_TRUE(next.has_value()) << next.error().message;
  wait_for(m, next->id);
  OperationManager fresh(*db_, events_, pools_);
  EXPECT_EQ(fresh.get(op->id)->state, "succeeded");
  EXPECT_EQ(fresh.get(next->id)->state, "succeeded");
}

TEST_F(OperationManagerTest, ListsInCreationOrderWithPaging) {
  OperationManager m(*db_, events_, pools_);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto op = m.start("test.n", "thing/" + std::to_string(i), "t",
                      [](OperationContext&) -> Expected<nlohmann::json> { return nlohmann::json{}; });
    ids.push_back(op->id);
    wait_for(m, op->id);
  }
  auto first = m.list("", 3);
  ASSERT_EQ(first->size(), 3u);
  auto rest = m.list(first->back().id, 10);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*first)[0].id, ids[0]);
  EXPECT_EQ(rest->back().id, ids[4]);
}

}  // namespace
}  // namespace novacron

#include "host/operations/operation_manager.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <thread>

namespace novacron {
using nlohmann::json;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Operation from_row(const Statement& s) {
  Operation op;
  op.id = s.text(0);
  op.kind = s.text(1);
  op.object = s.text(2);
  op.state = s.text(3);
  op.progress = static_cast<double>(s.integer(4)) / 1000.0;
  op.message = s.text(5);
  op.result = json::parse(s.text(6), nullptr, false);
  if (op.result.is_discarded()) op.result = nullptr;
  op.error_code = s.text(7);
  op.error_message = s.text(8);
  op.requested_by = s.text(9);
  op.created_at = s.integer(10);
  op.updated_at = s.integer(11);
  return op;
}

constexpr const char* kColumns =
    "id, kind, object, state, progress_permille, message, result, error_code, error_message, requested_by, "
    "created_at, updated_at";

}  // namespace

json Operation::to_json() const {
  json j = {{"id", id},
            {"kind", kind},
            {"object", object},
            {"state", state},
            {"progress", progress},
            {"message", message},
            {"requested_by", requested_by},
            {"created_at_ms", created_at},
            {"updated_at_ms", updated_at}};
  if (state == "succeeded") j["result"] = result;
  if (!error_code.empty()) j["error"] = {{"code", error_code}, {"message", error_message}};
  return j;
}

struct OperationManager::Running : OperationContext {
  Operation op;
  std::atomic<bool> cancel{false};
  std::vector<std::function<void(Operation)>> waiters;
  std::mutex* mutex = nullptr;  // the manager's, for op and waiters
  OperationManager* manager = nullptr;
  std::chrono::steady_clock::time_point last_persist{};

  bool cancel_requested() const override { return cancel.load(); }
  void report_progress(double fraction, const std::string& message) override {
    Operation snapshot;
    bool persist_now = false;
    {
      std::lock_guard<std::mutex> lock(*mutex);
      op.progress = std::clamp(fraction, 0.0, 1.0);
      op.message = message;
      op.updated_at = now_ms();
      snapshot = op;
      // Progress is persisted at most once a second: it is informative, not state.
      auto now = std::chrono::steady_clock::now();
      persist_now = now - last_persist > std::chrono::seconds(1);
      if (persist_now) last_persist = now;
    }
    if (persist_now) (void)manager->persist(snapshot);
  }
};

OperationManager::OperationManager(Database& db, EventBus& events, ExecutorPools& pools)
    : db_(db), events_(events), pools_(pools) {}

OperationManager::~OperationManager() { drain(std::chrono::seconds(30)); }

Expected<void> OperationManager::persist(const Operation& op) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(std::string("INSERT OR REPLACE INTO operations(") + kColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, op.id).bind(2, op.kind).bind(3, op.object).bind(4, op.state);
    stmt->bind(5, static_cast<std::int64_t>(op.progress * 1000)).bind(6, op.message).bind(7, dump(op.result));
    stmt->bind(8, op.error_code).bind(9, op.error_message).bind(10, op.requested_by);
    stmt->bind(11, op.created_at).bind(12, op.updated_at);
    return stmt->run();
  });
}

void OperationManager::publish(const Operation& op) {
  events_.publish("operation." + op.state, op.object, "host",
                  dump({{"id", op.id}, {"kind", op.kind}, {"state", op.state}}));
}

Expected<size_t> OperationManager::recover() {
  return db_.with_lock([&]() -> Expected<size_t> {
    auto stmt = db_.prepare(
        "UPDATE operations SET state = 'interrupted', error_code = 'interrupted', "
        "error_message = 'novacrond stopped while the operation ran; its effect may be partial', updated_at = ? "
        "WHERE state = 'running'");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, now_ms());
    if (auto r = stmt->run(); !r) return tl::unexpected(r.error());
    auto changes = db_.prepare("SELECT changes()");
    if (!changes) return tl::unexpected(changes.error());
    (void)changes->step();
    auto interrupted = static_cast<size_t>(changes->integer(0));
    // Bounded history: the newest 10,000 operations are kept.
    if (auto r = db_.exec("DELETE FROM operations WHERE id NOT IN (SELECT id FROM operations ORDER BY id DESC "
                          "LIMIT 10000)");
        !r) {
      return tl::unexpected(r.error());
    }
    return interrupted;
  });
}

Expected<Operation> OperationManager::start(const std::string& kind, const std::string& object,
                                            const std::string& requested_by, OperationWork work) {
  auto run = std::make_shared<Running>();
  run->mutex = &mutex_;
  run->manager = this;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = running_by_object_.find(object); it != running_by_object_.end()) {
      return make_error("conflict", object + " is busy with operation " + it->second + " (" +
                                        running_[it->second]->op.kind + "); wait for it or cancel it");
    }
    // Ids sort by creation: time in ms, then a counter, then randomness.
    unsigned char rnd[4];
    RAND_bytes(rnd, sizeof rnd);
    char id[48];
    std::snprintf(id, sizeof id, "op-%013lld-%04llx-%02x%02x%02x%02x", static_cast<long long>(now_ms()),
                  static_cast<unsigned long long>(counter_.fetch_add(1) & 0xffff), rnd[0], rnd[1], rnd[2], rnd[3]);
    run->op = Operation{id, kind, object, "running", 0, "", nullptr, "", "", requested_by, now_ms(), now_ms()};
    running_[run->op.id] = run;
    running_by_object_[object] = run->op.id;
  }
  Operation created = run->op;
  retry_unpersisted();
  if (auto r = persist(created); !r) {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(created.id);
    running_by_object_.erase(object);
    return tl::unexpected(r.error());
  }
  publish(created);
  pools_.blocking().post([this, run, work = std::move(work)] {
    Expected<json> result = make_error("internal", "the operation did not run");
    try {
      result = work(*run);
    } catch (const std::exception& e) {
      result = make_error("internal", std::string("the operation threw: ") + e.what());
    }
    Operation op;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      op = run->op;
    }
    op.updated_at = now_ms();
    if (result) {
      op.state = "succeeded";
      op.progress = 1;
      op.result = std::move(*result);
    } else if (run->cancel_requested() && result.error().code == "cancelled") {
      op.state = "cancelled";
      op.error_code = "cancelled";
      op.error_message = result.error().message;
    } else {
      op.state = "failed";
      op.error_code = result.error().code;
      op.error_message = result.error().message;
    }
    finish(run, std::move(op));
  });
  return created;
}

void OperationManager::retry_unpersisted() {
  std::map<std::string, Operation> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unpersisted_.empty()) return;
    pending = unpersisted_;
  }
  for (const auto& [id, op] : pending) {
    if (!persist(op)) return;  // the store still refuses: keep them for the next try
    std::lock_guard<std::mutex> lock(mutex_);
    unpersisted_.erase(id);
    spdlog::info("operation {}: its final state ({}) is stored now", id, op.state);
  }
}

void OperationManager::finish(const std::shared_ptr<Running>& run, Operation op) {
  retry_unpersisted();
  bool stored = true;
  if (auto r = persist(op); !r) {
    stored = false;
    spdlog::error("operation {} finished but could not be stored (kept in memory, retried): {}", op.id,
                  r.error().message);
  }
  std::vector<std::function<void(Operation)>> waiters;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stored) {
      constexpr size_t kMaxUnpersisted = 10000;  // a store that never recovers must not grow this forever
      if (unpersisted_.size() >= kMaxUnpersisted) unpersisted_.erase(unpersisted_.begin());
      unpersisted_[op.id] = op;
    }
    run->op = op;
    waiters.swap(run->waiters);
    running_.erase(op.id);
    running_by_object_.erase(op.object);
  }
  publish(op);
  spdlog::info("operation {} kind={} object={} state={}", op.id, op.kind, op.object, op.state);
  // Bounded history while running too, not only at start-up.
  if (counter_.load() % 1000 == 0) {
    (void)db_.with_lock([&] {
      return db_.exec(
          "DELETE FROM operations WHERE id NOT IN (SELECT id FROM operations ORDER BY id DESC LIMIT 10000)");
    });
  }
  for (auto& w : waiters) w(op);
}

bool OperationManager::busy(const std::string& object) {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_by_object_.count(object) != 0;
}

std::optional<Operation> OperationManager::get(const std::string& id) {
  auto op = find(id);
  if (!op) {
    spdlog::error("operation {} could not be read: {}", id, op.error().message);
    return std::nullopt;
  }
  return *op;
}

Expected<std::optional<Operation>> OperationManager::find(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = running_.find(id); it != running_.end()) return std::optional<Operation>(it->second->op);
    if (auto it = unpersisted_.find(id); it != unpersisted_.end()) return std::optional<Operation>(it->second);
  }
  return db_.with_lock([&]() -> Expected<std::optional<Operation>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM operations WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<Operation>();
    return std::optional<Operation>(from_row(*stmt));
  });
}

Expected<std::vector<Operation>> OperationManager::list(const std::string& after, size_t limit) {
  auto ops = db_.with_lock([&]() -> Expected<std::vector<Operation>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM operations WHERE id > ? ORDER BY id LIMIT ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, after).bind(2, static_cast<std::int64_t>(limit));
    std::vector<Operation> out;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      out.push_back(from_row(*stmt));
    }
    return out;
  });
  if (!ops) return ops;
  // Running operations: their live progress, not the last persisted one.
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& op : *ops) {
    if (auto it = running_.find(op.id); it != running_.end()) op = it->second->op;
    if (auto it = unpersisted_.find(op.id); it != unpersisted_.end()) op = it->second;
  }
  return ops;
}

Expected<Operation> OperationManager::cancel(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = running_.find(id); it != running_.end()) {
      it->second->cancel = true;
      it->second->op.message = "cancel requested";
      return it->second->op;
    }
  }
  if (auto op = get(id)) return make_error("finished", "operation " + id + " has already finished (" + op->state + ")");
  return make_error("not_found", "operation " + id + " does not exist");
}

void OperationManager::wait(const std::string& id, std::chrono::milliseconds timeout,
                            std::function<void(Operation)> done) {
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto call = [once, done = std::move(done)](Operation op) {
    if (!once->exchange(true)) done(std::move(op));
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = running_.find(id);
    if (it != running_.end()) {
      it->second->waiters.push_back(call);
      // At the deadline: the state then, unless the operation has ended (and answered) already.
      pools_.blocking().post_after(timeout, [this, id, call, once] {
        if (once->load()) return;
        if (auto op = get(id)) call(*op);
      });
      return;
    }
  }
  if (auto op = get(id)) call(*op);
}

void OperationManager::drain(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (running_.empty()) return;
    }
    if (std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace novacron

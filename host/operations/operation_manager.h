// Long-running operations: an action that can take longer than a request (enable a plugin,
// later: create a VM, migrate) runs as an operation. It is persisted (a restart shows it as
// interrupted, never silently gone), at most one mutating operation runs per object (a
// second gets "conflict" naming the running one), callers can wait for it up to a deadline,
// cancel it, and follow its state changes as events.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/common/error.h"
#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/state/database.h"

namespace novacron {

struct Operation {
  std::string id;
  std::string kind;     // e.g. "plugin.enable"
  std::string object;   // e.g. "plugin/io.novacron.policy.binpack"
  std::string state;    // running | succeeded | failed | cancelled | interrupted
  double progress = 0;  // 0..1
  std::string message;
  nlohmann::json result;  // on success
  std::string error_code;
  std::string error_message;
  std::string requested_by;
  std::int64_t created_at = 0;  // Unix ms
  std::int64_t updated_at = 0;

  bool finished() const { return state != "running"; }
  nlohmann::json to_json() const;
};

// What the work function sees.
class OperationContext {
 public:
  virtual ~OperationContext() = default;
  virtual bool cancel_requested() const = 0;
  virtual void report_progress(double fraction, const std::string& message) = 0;
};

using OperationWork = std::function<Expected<nlohmann::json>(OperationContext&)>;

class OperationManager {
 public:
  OperationManager(Database& db, EventBus& events, ExecutorPools& pools);
  ~OperationManager();

  // Marks operations left running by a previous process as interrupted.
  Expected<size_t> recover();

  // Starts `work` on the blocking pool. Error "conflict" when another operation on `object`
  // is running (its id is in the message).
  Expected<Operation> start(const std::string& kind, const std::string& object, const std::string& requested_by,
                            OperationWork work);

  // The operation, std::nullopt when there is none; a state-store error is an Error.
  Expected<std::optional<Operation>> find(const std::string& id);
  // find() for internal callers: a state-store error is logged and reads as "none".
  std::optional<Operation> get(const std::string& id);
  // Operations ordered by id (ids sort by creation time), after `after`, at most `limit`.
  Expected<std::vector<Operation>> list(const std::string& after, size_t limit);

  // Asks the work to stop; it ends as "cancelled" when it notices. Error "not_found",
  // "finished" (nothing to cancel).
  Expected<Operation> cancel(const std::string& id);

  // Whether an operation on `object` is running now.
  bool busy(const std::string& object);

  // Calls `done` once: when the operation finishes, or with its state at `timeout`.
  void wait(const std::string& id, std::chrono::milliseconds timeout, std::function<void(Operation)> done);

  // Waits (blocking) until every running operation has finished; for shutdown.
  void drain(std::chrono::milliseconds timeout);

 private:
  struct Running;
  Expected<void> persist(const Operation& op);
  // Stores the final states that could not be stored when their operations ended.
  void retry_unpersisted();
  void finish(const std::shared_ptr<Running>& run, Operation op);
  void publish(const Operation& op);

  Database& db_;
  EventBus& events_;
  ExecutorPools& pools_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Running>> running_;  // by id
  std::map<std::string, std::string> running_by_object_;     // object -> id
  // Ended operations whose final state the store refused (its row still says "running"):
  // served from here and written again at the next operation start or end, so that nobody
  // sees a finished operation as running for the rest of the process's life.
  std::map<std::string, Operation> unpersisted_;
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace novacron

// The host's event bus: every event gets a monotonically increasing sequence number and is
// kept in a bounded in-memory ring so that subscribers can resume with "since=SEQ"
// (the WebSocket stream /v1/events is built on it).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace novacron {

struct HostEvent {
  std::uint64_t seq = 0;
  std::int64_t time_ms = 0;  // Unix epoch milliseconds
  std::string type;          // e.g. "plugin.loaded"
  std::string object;        // e.g. "plugin/io.novacron.policy.binpack"
  std::string source;        // "host" or the publishing plugin's id
  std::string payload_json;  // a JSON object
};

class EventBus {
 public:
  explicit EventBus(size_t retention = 10000) : retention_(retention) {}

  // Sequence numbers continue across restarts so that a client resuming with a number from
  // before a restart gets "too old" instead of other events under reused numbers. The host
  // persists a reservation: a run starts after the previous run's reservation and reserves
  // blocks ahead; `reserve(up_to)` persists a new reservation when a block is used up (it
  // runs under the bus lock, once per kSeqBlock events).
  static constexpr std::uint64_t kSeqBlock = std::uint64_t{1} << 20;
  using SeqReserver = std::function<bool(std::uint64_t up_to)>;
  void start_sequence_at(std::uint64_t first, std::uint64_t reserved_up_to, SeqReserver reserve);

  // Stamps and stores the event, then calls subscribers (outside the lock).
  std::uint64_t publish(std::string type, std::string object, std::string source, std::string payload_json);

  // Events with seq > `since`, oldest first. std::nullopt when `since` is older than the
  // retention window (the caller must resynchronise).
  std::optional<std::vector<HostEvent>> since(std::uint64_t since) const;
  std::uint64_t last_seq() const;
  // Sequence number of the oldest event still kept (last_seq() + 1 when none is).
  std::uint64_t oldest_retained_seq() const;
  // Whether since(seq) would answer (seq not older than the retention window): a bounds
  // check, without copying events.
  bool can_resume_from(std::uint64_t seq) const;

  using Subscriber = std::function<void(const HostEvent&)>;
  // Returns an id for unsubscribe(). Subscribers run on the publishing thread with the bus
  // locked (that keeps every subscriber's view in sequence order): keep them short, and never
  // publish, subscribe or unsubscribe from inside one.
  std::uint64_t subscribe(Subscriber fn);
  void unsubscribe(std::uint64_t id);
  // Drops every subscriber (shutdown: before the executors that their connections use go).
  void unsubscribe_all();

 private:
  size_t retention_;
  mutable std::mutex mutex_;
  std::deque<HostEvent> ring_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t reserved_up_to_ = UINT64_MAX;  // no persistence unless start_sequence_at()
  SeqReserver reserve_;
  std::uint64_t next_subscriber_ = 1;
  std::vector<std::pair<std::uint64_t, Subscriber>> subscribers_;
};

}  // namespace novacron

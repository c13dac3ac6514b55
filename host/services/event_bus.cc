#include "host/services/event_bus.h"

#include <chrono>

namespace novacron {

void EventBus::start_sequence_at(std::uint64_t first, std::uint64_t reserved_up_to, SeqReserver reserve) {
  std::lock_guard<std::mutex> lock(mutex_);
  next_seq_ = first;
  reserved_up_to_ = reserved_up_to;
  reserve_ = std::move(reserve);
}

std::uint64_t EventBus::publish(std::string type, std::string object, std::string source, std::string payload_json) {
  HostEvent ev;
  ev.time_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  ev.type = std::move(type);
  ev.object = std::move(object);
  ev.source = std::move(source);
  ev.payload_json = payload_json.empty() ? "{}" : std::move(payload_json);
  // Subscribers are called under the lock, so that every subscriber sees events in sequence
  // order even when several threads publish at once (a stream must never skip one).
  std::lock_guard<std::mutex> lock(mutex_);
  if (next_seq_ > reserved_up_to_ && reserve_ && reserve_(reserved_up_to_ + kSeqBlock)) {
    reserved_up_to_ += kSeqBlock;
  }
  ev.seq = next_seq_++;
  ring_.push_back(ev);
  while (ring_.size() > retention_) ring_.pop_front();
  for (const auto& [id, fn] : subscribers_) fn(ev);
  return ev.seq;
}

std::optional<std::vector<HostEvent>> EventBus::since(std::uint64_t since) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t oldest = ring_.empty() ? next_seq_ : ring_.front().seq;
  // Events (since, oldest) were dropped: the caller missed some. (Same rule as can_resume_from.)
  if (since + 1 < oldest) return std::nullopt;
  std::vector<HostEvent> out;
  for (const auto& ev : ring_) {
    if (ev.seq > since) out.push_back(ev);
  }
  return out;
}

bool EventBus::can_resume_from(std::uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t oldest = ring_.empty() ? next_seq_ : ring_.front().seq;
  return seq + 1 >= oldest;
}

std::uint64_t EventBus::oldest_retained_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ring_.empty() ? next_seq_ : ring_.front().seq;
}

std::uint64_t EventBus::last_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_seq_ - 1;
}

std::uint64_t EventBus::subscribe(Subscriber fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t id = next_subscriber_++;
  subscribers_.emplace_back(id, std::move(fn));
  return id;
}

void EventBus::unsubscribe_all() {
  std::vector<std::pair<std::uint64_t, Subscriber>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(subscribers_);
  }
  // Destroyed outside the lock: a subscriber's state may own connections.
}

void EventBus::unsubscribe(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(subscribers_, [id](const auto& s) { return s.first == id; });
}

}  // namespace novacron

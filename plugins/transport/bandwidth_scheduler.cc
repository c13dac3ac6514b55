#include "bandwidth_scheduler.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace novacron::transport {
namespace {

// How often a blocked acquire looks at its cancel flag when nothing else wakes it.
constexpr std::chrono::milliseconds kCancelCheck{50};

std::int64_t saturating_add(std::int64_t now, std::int64_t wait) {
  return now > 0 && wait > INT64_MAX - now ? INT64_MAX : now + wait;
}

// An unlimited bucket never spends its credit, which stays at what it started with; when a
// limit arrives, it starts full, as if it had been "infinitely full" until then.
void set_bucket_rate(TokenBucket& bucket, std::int64_t bps, std::int64_t now_ns) {
  if (bucket.rate() == 0) {
    bucket = TokenBucket(bps, now_ns);
  } else {
    bucket.set_rate(bps, now_ns);
  }
}

}  // namespace

BandwidthScheduler::BandwidthScheduler(const Clock& clock) : clock_(clock), node_(0, clock.now_ns()) {}

int BandwidthScheduler::class_of(Priority priority) {
  // An out-of-range value (a cast from the wire or config) gets the lowest class.
  int cls = static_cast<int>(priority);
  return cls >= 0 && cls < kClasses ? cls : kClasses - 1;
}

void BandwidthScheduler::set_node_rate(std::int64_t bps) { set_bucket_rate(node_, bps, clock_.now_ns()); }

void BandwidthScheduler::add_transfer(std::uint64_t key, Priority priority, std::int64_t bps) {
  auto it = transfers_.find(key);
  if (it == transfers_.end()) {
    transfers_.emplace(key, Transfer{priority, TokenBucket(bps, clock_.now_ns()), {}});
    order_[class_of(priority)].push_back(key);
    return;
  }
  set_bucket_rate(it->second.bucket, bps, clock_.now_ns());
  if (class_of(it->second.priority) != class_of(priority)) {
    drop_from_order(key, it->second.priority);
    order_[class_of(priority)].push_back(key);
  }
  it->second.priority = priority;
}

void BandwidthScheduler::set_transfer_rate(std::uint64_t key, std::int64_t bps) {
  auto it = transfers_.find(key);
  if (it != transfers_.end()) set_bucket_rate(it->second.bucket, bps, clock_.now_ns());
}

void BandwidthScheduler::remove_transfer(std::uint64_t key) {
  auto it = transfers_.find(key);
  if (it == transfers_.end()) return;
  for (const Request& r : it->second.queue) ticket_owner_.erase(r.ticket);
  drop_from_order(key, it->second.priority);
  transfers_.erase(it);
}

void BandwidthScheduler::drop_from_order(std::uint64_t key, Priority priority) {
  std::vector<std::uint64_t>& order = order_[class_of(priority)];
  order.erase(std::remove(order.begin(), order.end(), key), order.end());
}

std::uint64_t BandwidthScheduler::submit(std::uint64_t key, std::int64_t bytes) {
  auto it = transfers_.find(key);
  if (it == transfers_.end()) return 0;
  const std::uint64_t ticket = next_ticket_++;
  it->second.queue.push_back(Request{ticket, std::max<std::int64_t>(bytes, 0)});
  ticket_owner_.emplace(ticket, key);
  return ticket;
}

void BandwidthScheduler::cancel(std::uint64_t ticket) {
  auto owner = ticket_owner_.find(ticket);
  if (owner == ticket_owner_.end()) return;
  std::deque<Request>& queue = transfers_.at(owner->second).queue;
  queue.erase(std::find_if(queue.begin(), queue.end(), [ticket](const Request& r) { return r.ticket == ticket; }));
  ticket_owner_.erase(owner);
}

int BandwidthScheduler::ready_in_class(int cls, std::int64_t now) const {
  const std::vector<std::uint64_t>& order = order_[cls];
  for (size_t i = 0; i < order.size(); ++i) {
    const Transfer& t = transfers_.at(order[i]);
    if (!t.queue.empty() && t.bucket.ns_until_ready(now) == 0) return static_cast<int>(i);
  }
  return -1;
}

std::uint64_t BandwidthScheduler::grant(int cls, int index, std::int64_t now) {
  std::vector<std::uint64_t>& order = order_[cls];
  Transfer& t = transfers_.at(order[index]);
  const Request r = t.queue.front();
  t.queue.pop_front();
  t.bucket.try_take(r.bytes, now);  // succeeds: ready_in_class saw the bucket out of debt
  ticket_owner_.erase(r.ticket);
  // Its turn is used: to the back of the class, so the others that waited go first.
  std::rotate(order.begin() + index, order.begin() + index + 1, order.end());
  return r.ticket;
}

std::vector<std::uint64_t> BandwidthScheduler::poll() {
  const std::int64_t now = clock_.now_ns();
  std::vector<std::uint64_t> granted;
  while (true) {
    // The highest class with a request its own bucket lets go; classes whose requests all
    // wait for their own buckets are passed over (they block nobody).
    int cls = 0;
    int index = ready_in_class(cls, now);
    while (index < 0 && ++cls < kClasses) index = ready_in_class(cls, now);
    if (index < 0) return granted;
    const Request& head = transfers_.at(order_[cls][index]).queue.front();
    // Out of node tokens: this class waits for them, and no lower class may take any first.
    if (!node_.try_take(head.bytes, now)) return granted;
    granted.push_back(grant(cls, index, now));
  }
}

std::optional<std::int64_t> BandwidthScheduler::next_wakeup_ns() const {
  // A request can go once both buckets are out of debt. Priorities only ever delay a lower
  // class further, so the earliest such moment over all heads is the next possible grant.
  const std::int64_t now = clock_.now_ns();
  const std::int64_t node_wait = node_.ns_until_ready(now);
  std::optional<std::int64_t> best;
  for (const auto& [key, t] : transfers_) {
    if (t.queue.empty()) continue;
    std::int64_t wait = std::max(node_wait, t.bucket.ns_until_ready(now));
    if (!best || wait < *best) best = wait;
  }
  if (!best) return std::nullopt;
  return saturating_add(now, *best);
}

BandwidthGate::BandwidthGate() : scheduler_(clock_) {}

void BandwidthGate::set_node_rate(std::int64_t bps) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.set_node_rate(bps);
  cv_.notify_all();  // waiters recompute their wakeup under the new rate
}

void BandwidthGate::add_transfer(std::uint64_t key, Priority priority, std::int64_t bps) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.add_transfer(key, priority, bps);
  cv_.notify_all();
}

void BandwidthGate::set_transfer_rate(std::uint64_t key, std::int64_t bps) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.set_transfer_rate(key, bps);
  cv_.notify_all();
}

void BandwidthGate::remove_transfer(std::uint64_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.remove_transfer(key);
  cv_.notify_all();  // its waiters find their tickets gone and return false
}

std::size_t BandwidthGate::waiters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_;
}

void BandwidthGate::poll_locked() {
  std::vector<std::uint64_t> tickets = scheduler_.poll();
  if (tickets.empty()) return;
  granted_.insert(tickets.begin(), tickets.end());
  cv_.notify_all();
}

std::chrono::steady_clock::time_point BandwidthGate::deadline_locked() const {
  auto deadline = std::chrono::steady_clock::now() + kCancelCheck;
  if (std::optional<std::int64_t> at = scheduler_.next_wakeup_ns()) {
    // SteadyClock counts from steady_clock's epoch, so its ns are a steady_clock time.
    deadline = std::min(deadline, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(*at)));
  }
  return deadline;
}

bool BandwidthGate::wait_for_grant(std::unique_lock<std::mutex>& lock, std::uint64_t ticket,
                                   const std::atomic<bool>& cancelled) {
  while (true) {
    poll_locked();
    if (granted_.erase(ticket) != 0) return true;
    if (!scheduler_.waiting(ticket)) return false;  // its transfer was removed
    if (cancelled.load()) {
      scheduler_.cancel(ticket);  // so that it is never granted to nobody
      return false;
    }
    cv_.wait_until(lock, deadline_locked());
  }
}

bool BandwidthGate::acquire(std::uint64_t key, std::int64_t bytes, const std::atomic<bool>& cancelled) {
  if (cancelled.load()) return false;
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t ticket = scheduler_.submit(key, bytes);
  if (ticket == 0) return false;
  ++waiters_;
  const bool granted = wait_for_grant(lock, ticket, cancelled);
  --waiters_;
  return granted;
}

}  // namespace novacron::transport

// Bandwidth scheduling across transfers (docs/design/migration-transport.md, section 6).
//
// BandwidthScheduler is pure: it never sleeps and reads time only from the injected Clock,
// so tests drive it exactly. A sender submits a request for `bytes` and gets a ticket; poll()
// grants waiting tickets when both the transfer's bucket and the node's have tokens (rate 0 =
// unlimited). Classes are strictly ordered, live > cold > background: while a request of a
// higher class waits only for node tokens, no lower class gets any. A request held back by its
// own transfer's bucket blocks nobody, so the node's rate is never left unused while someone
// could use it. Within a class, transfers take turns per grant; each transfer's own requests
// are granted in order.
//
// BandwidthGate wraps a scheduler for transfer threads that block until their bytes may go.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "clock.h"
#include "token_bucket.h"

namespace novacron::transport {

enum class Priority : int { kLive = 0, kCold = 1, kBackground = 2 };

class BandwidthScheduler {
 public:
  // `clock` must outlive the scheduler.
  explicit BandwidthScheduler(const Clock& clock);

  // The node-wide limit in bytes per second; 0 = none.
  void set_node_rate(std::int64_t bps);
  // Registers a transfer with its own limit (0 = none). Adding a known key changes its
  // priority and rate; its waiting requests stay queued.
  void add_transfer(std::uint64_t key, Priority priority, std::int64_t bps);
  void set_transfer_rate(std::uint64_t key, std::int64_t bps);
  // Forgets the transfer and drops its waiting tickets (never granted).
  void remove_transfer(std::uint64_t key);

  // Queues a request for `bytes` of transfer `key`; returns its ticket (> 0), or 0 when the key
  // is not registered.
  std::uint64_t submit(std::uint64_t key, std::int64_t bytes);
  // The tickets granted now, in grant order; their bytes are taken from the transfer's bucket
  // and the node's.
  std::vector<std::uint64_t> poll();
  // The clock time (ns) at which a waiting ticket may become grantable: now or earlier means
  // poll() grants something now. nullopt when nothing waits.
  std::optional<std::int64_t> next_wakeup_ns() const;
  // Drops a waiting ticket; unknown or granted tickets are ignored.
  void cancel(std::uint64_t ticket);
  // Whether `ticket` is still queued (neither granted, cancelled nor dropped).
  bool waiting(std::uint64_t ticket) const { return ticket_owner_.count(ticket) != 0; }

 private:
  static constexpr int kClasses = 3;

  struct Request {
    std::uint64_t ticket;
    std::int64_t bytes;
  };
  struct Transfer {
    Priority priority;
    TokenBucket bucket;
    std::deque<Request> queue;
  };

  static int class_of(Priority priority);
  // The first transfer of `cls` in turn order whose head request its own bucket lets go now;
  // its index in order_[cls], or -1.
  int ready_in_class(int cls, std::int64_t now) const;
  // Grants the head request of order_[cls][index] and sends that transfer to the back of its
  // class's turn.
  std::uint64_t grant(int cls, int index, std::int64_t now);
  void drop_from_order(std::uint64_t key, Priority priority);

  const Clock& clock_;
  TokenBucket node_;
  std::unordered_map<std::uint64_t, Transfer> transfers_;
  // Per class, its transfers in turn order: the next to be served first.
  std::vector<std::uint64_t> order_[kClasses];
  std::unordered_map<std::uint64_t, std::uint64_t> ticket_owner_;  // waiting ticket -> transfer
  std::uint64_t next_ticket_ = 1;
};

// A thread-safe, blocking front for transfer threads. Whichever waiting thread wakes polls
// the scheduler for everyone and records the grants; each thread waits until its own ticket is
// granted, until the scheduler's next wakeup, and at most 50 ms so that cancellation is seen.
class BandwidthGate {
 public:
  BandwidthGate();

  void set_node_rate(std::int64_t bps);
  void add_transfer(std::uint64_t key, Priority priority, std::int64_t bps);
  void set_transfer_rate(std::uint64_t key, std::int64_t bps);
  void remove_transfer(std::uint64_t key);

  // Blocks until `bytes` of transfer `key` may be sent: true. False when `cancelled` is or
  // becomes set first, or when the transfer is not (or no longer) registered.
  bool acquire(std::uint64_t key, std::int64_t bytes, const std::atomic<bool>& cancelled);
  // Threads waiting in acquire (for metrics and tests).
  std::size_t waiters() const;

 private:
  // Polls with mu_ held, records the grants and wakes the other waiters if there were any.
  void poll_locked();
  // With mu_ held: when a waiter must look again (next possible grant, or the cancel check).
  std::chrono::steady_clock::time_point deadline_locked() const;
  bool wait_for_grant(std::unique_lock<std::mutex>& lock, std::uint64_t ticket, const std::atomic<bool>& cancelled);

  SteadyClock clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  BandwidthScheduler scheduler_;               // guarded by mu_
  std::unordered_set<std::uint64_t> granted_;  // guarded by mu_: granted, not yet picked up
  std::size_t waiters_ = 0;                    // guarded by mu_
};

}  // namespace novacron::transport

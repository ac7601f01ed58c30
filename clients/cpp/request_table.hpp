// The requests of one client that wait for a reply, by id, with their deadlines.
// Pure bookkeeping: no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clients/cpp/reply.hpp"
#include "clients/cpp/result.hpp"

namespace troupe::client {

class request_table {
public:
  using clock = std::chrono::steady_clock;
  using reply_handler = std::function<void(result<reply>)>;

  struct entry {
    reply_handler handler;
    clock::time_point deadline;
    std::string frame;   // kept until sent, and for good if `resend`
    bool resend = false; // safe to send again on a new connection (idempotent)
    bool sent = false;
  };

  void add(std::uint64_t id, entry e) { entries_.insert_or_assign(id, std::move(e)); }
  std::optional<entry> take(std::uint64_t id);
  // Entries whose deadline has passed.
  std::vector<entry> take_expired(clock::time_point now);
  // The connection is gone: removes what was sent and cannot be sent again; what may be
  // sent again becomes unsent.
  std::vector<entry> take_lost();
  std::vector<entry> take_all();
  // Calls send(frame) for every unsent entry in id order and marks it sent.
  void send_unsent(const std::function<void(std::string)>& send);

  std::optional<clock::time_point> earliest_deadline() const;
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

private:
  std::map<std::uint64_t, entry> entries_;
};

} // namespace troupe::client

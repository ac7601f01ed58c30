#include "clients/cpp/request_table.hpp"

namespace troupe::client {

std::optional<RequestTable::Entry> RequestTable::take(std::uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  Entry e = std::move(it->second);
  entries_.erase(it);
  return e;
}

std::vector<RequestTable::Entry> RequestTable::take_expired(Clock::time_point now) {
  std::vector<Entry> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.deadline <= now) {
      out.push_back(std::move(it->second));
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<RequestTable::Entry> RequestTable::take_lost() {
  std::vector<Entry> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.sent && !it->second.resend) {
      out.push_back(std::move(it->second));
      it = entries_.erase(it);
    } else {
      it->second.sent = false;
      ++it;
    }
  }
  return out;
}

std::vector<RequestTable::Entry> RequestTable::take_all() {
  std::vector<Entry> out;
  out.reserve(entries_.size());
  for (auto& [id, e] : entries_) out.push_back(std::move(e));
  entries_.clear();
  return out;
}

void RequestTable::send_unsent(const std::function<void(std::string)>& send) {
  for (auto& [id, e] : entries_) {
    if (e.sent) continue;
    e.sent = true;
    if (e.resend) {
      send(e.frame);
    } else {
      send(std::move(e.frame));
      e.frame.clear();
    }
  }
}

std::optional<RequestTable::Clock::time_point> RequestTable::earliest_deadline() const {
  std::optional<Clock::time_point> best;
  for (const auto& [id, e] : entries_)
    if (!best || e.deadline < *best) best = e.deadline;
  return best;
}

}  // namespace troupe::client

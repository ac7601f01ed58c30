#include "clients/cpp/request_table.hpp"

namespace troupe::client {

std::optional<request_table::entry> request_table::take(std::uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  entry e = std::move(it->second);
  entries_.erase(it);
  return e;
}

std::vector<request_table::entry> request_table::take_expired(clock::time_point now) {
  std::vector<entry> out;
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

std::vector<request_table::entry> request_table::take_lost() {
  std::vector<entry> out;
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

std::vector<request_table::entry> request_table::take_all() {
  std::vector<entry> out;
  out.reserve(entries_.size());
  for (auto& [id, e] : entries_)
    out.push_back(std::move(e));
  entries_.clear();
  return out;
}

void request_table::send_unsent(const std::function<void(std::string)>& send) {
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

std::optional<request_table::clock::time_point> request_table::earliest_deadline() const {
  std::optional<clock::time_point> best;
  for (const auto& [id, e] : entries_)
    if (!best || e.deadline < *best) best = e.deadline;
  return best;
}

} // namespace troupe::client

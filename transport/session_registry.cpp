// session_registry (declared in server_context.hpp): live sessions, counted in total and
// per remote address, and tagged with their user once connected.

#include "transport/server_context.hpp"

#include <vector>

#include "transport/ws_session.hpp"

namespace troupe::transport {

namespace {
const actors::peer* key_of(const ws_session* session) { return session; }
} // namespace

session_registry::admission session_registry::admit(const net::ip::address& address,
                                                    std::size_t max_total,
                                                    std::size_t max_per_address) {
  std::lock_guard lock(mutex_);
  if (max_total > 0 && sessions_.size() + admitted_ >= max_total) return admission::too_many;
  auto& from_address = per_address_[address];
  if (max_per_address > 0 && from_address >= max_per_address)
    return admission::too_many_from_address;
  ++from_address;
  ++admitted_;
  return admission::admitted;
}

void session_registry::bind(const ws_session* session, const net::ip::address& address) {
  std::lock_guard lock(mutex_);
  --admitted_;
  sessions_[key_of(session)].address = address;
}

void session_registry::add(const std::shared_ptr<ws_session>& session) {
  std::lock_guard lock(mutex_);
  sessions_[key_of(session.get())].session = session; // admitted before, or not counted by IP
}

void session_registry::remove(const ws_session* session) {
  std::lock_guard lock(mutex_);
  if (auto it = sessions_.find(key_of(session)); it != sessions_.end()) forget(it);
}

void session_registry::forget(std::unordered_map<const actors::peer*, entry>::iterator it) {
  if (it->second.address) {
    auto count = per_address_.find(*it->second.address);
    if (count != per_address_.end() && --count->second == 0) per_address_.erase(count);
  }
  sessions_.erase(it);
}

std::size_t session_registry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

void session_registry::identify(const actors::peer* session, std::string user) {
  std::lock_guard lock(mutex_);
  if (auto it = sessions_.find(session); it != sessions_.end()) it->second.user = std::move(user);
}

std::size_t session_registry::close_user(const std::string& user, std::uint16_t code,
                                         const std::string& reason, bool reconnect) {
  std::vector<std::shared_ptr<ws_session>> closing;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, entry] : sessions_) {
      if (entry.user.empty() || entry.user != user) continue;
      entry.user.clear(); // closing: a second disconnect does not count it again
      if (auto session = entry.session.lock()) closing.push_back(std::move(session));
    }
  }
  for (auto& session : closing)
    session->close_from_anywhere(code, reason, reconnect);
  return closing.size();
}

void session_registry::check_liveness(std::chrono::steady_clock::time_point now) {
  std::vector<std::shared_ptr<ws_session>> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, entry] : sessions_)
      if (auto session = entry.session.lock(); session && session->take_due(now))
        due.push_back(std::move(session));
  }
  for (auto& session : due)
    session->check_liveness();
}

void session_registry::for_each(
    const std::function<void(const std::shared_ptr<ws_session>&)>& visit) const {
  std::vector<std::shared_ptr<ws_session>> live;
  {
    std::lock_guard lock(mutex_);
    live.reserve(sessions_.size());
    for (auto& [key, entry] : sessions_)
      if (auto session = entry.session.lock()) live.push_back(std::move(session));
  }
  for (auto& session : live)
    visit(session);
}

} // namespace troupe::transport

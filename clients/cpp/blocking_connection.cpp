#include "clients/cpp/blocking_connection.hpp"

#include <future>

#include <boost/asio/post.hpp>

namespace troupe::client {

namespace {

template <class T>
T wait_for(std::future<result<T>>& f, std::chrono::milliseconds timeout, const char* what) {
  if (f.wait_for(timeout) != std::future_status::ready)
    throw client_error(error{errc::timeout, std::string(what) + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw client_error(r.error());
  return std::move(r.value());
}

template <class T>
std::pair<std::shared_ptr<std::promise<result<T>>>, std::future<result<T>>> make_promise() {
  auto p = std::make_shared<std::promise<result<T>>>();
  auto f = p->get_future();
  return {p, std::move(f)};
}

} // namespace

blocking_connection::blocking_connection(connection_options opts)
    : own_io_(std::make_unique<boost::asio::io_context>(1)) {
  work_.emplace(own_io_->get_executor());
  client_ = std::make_unique<connection>(own_io_->get_executor(), std::move(opts));
  init();
  thread_ = std::thread([io = own_io_.get()] { io->run(); });
}

blocking_connection::blocking_connection(boost::asio::any_io_executor ex, connection_options opts) {
  client_ = std::make_unique<connection>(std::move(ex), std::move(opts));
  init();
}

void blocking_connection::init() {
  client_->on_state([this](const state_event& ev) {
    std::lock_guard<std::mutex> l(m_);
    current_ = ev.state;
    states_.push_back(ev);
    cv_.notify_all();
  });
  client_->on_error([this](const error& e) {
    std::lock_guard<std::mutex> l(m_);
    errors_.push_back(e);
    cv_.notify_all();
  });
}

blocking_connection::~blocking_connection() {
  bool live;
  {
    std::lock_guard<std::mutex> l(m_);
    live = current_ != connection_state::idle && current_ != connection_state::closed;
  }
  if (live) { // close gracefully, briefly
    client_->close();
    std::unique_lock<std::mutex> l(m_);
    cv_.wait_for(l, std::chrono::seconds(2), [&] { return current_ == connection_state::closed; });
  }
  client_.reset(); // no callback runs after this
  if (own_io_) {
    // Let the I/O thread run what the `connection` posted on its way out, then stop it. (The
    // marker goes in before the work guard goes: once out of work, run() would return
    // and the marker would never run.)
    std::promise<void> flushed;
    auto f = flushed.get_future();
    boost::asio::post(*own_io_, [&flushed] { flushed.set_value(); });
    work_.reset();
    f.wait_for(std::chrono::seconds(2));
    own_io_->stop();
    if (thread_.joinable()) thread_.join();
  }
}

connected_info blocking_connection::connect(duration timeout) {
  client_->start();
  state_event ev = take_states_until(
      [](const state_event& e) {
        return e.state == connection_state::connected || e.state == connection_state::closed;
      },
      timeout, "not connected in time");
  if (ev.state == connection_state::closed)
    throw client_error(error{errc::refused, "closed while connecting: " + ev.reason});
  return ev.info;
}

subscribed_event blocking_connection::subscribe(const std::string& room, duration timeout) {
  auto [p, f] = make_promise<subscribed_event>();
  room_handlers h;
  h.on_message = [this](const message& m) {
    std::lock_guard<std::mutex> l(m_);
    messages_.push_back(m);
    cv_.notify_all();
  };
  h.on_subscribed = [this](const subscribed_event& ev) {
    std::lock_guard<std::mutex> l(m_);
    subscribed_.push_back(ev);
    cv_.notify_all();
  };
  h.on_error = [this](const error& e) {
    std::lock_guard<std::mutex> l(m_);
    errors_.push_back(e);
  };
  h.on_presence = [this](const presence_event& ev) {
    std::lock_guard<std::mutex> l(m_);
    if (ev.view) views_[ev.room] = ev.view->snapshot();
    presence_.push_back(ev);
    presence_.back().view = nullptr;
    cv_.notify_all();
  };
  h.on_typing = [this](const typing_event& ev) {
    std::lock_guard<std::mutex> l(m_);
    auto& v = views_[ev.room];
    v.room = ev.room;
    if (ev.on)
      v.typing[ev.client] = ev.user;
    else
      v.typing.erase(ev.client);
    typing_.push_back(ev);
    cv_.notify_all();
  };
  client_->subscribe(room, std::move(h),
                     [p = p](result<subscribed_event> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "subscribe");
}

void blocking_connection::unsubscribe(const std::string& room, duration timeout) {
  auto [p, f] = make_promise<nothing>();
  client_->unsubscribe(room, [p = p](result<nothing> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "unsubscribe");
}

ack blocking_connection::publish(const std::string& room, const value& data, duration timeout) {
  auto [p, f] = make_promise<ack>();
  client_->publish(room, data, [p = p](result<ack> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "publish");
}

ack blocking_connection::publish(const std::string& room, const value& data, const std::string& key,
                                 duration timeout) {
  auto [p, f] = make_promise<ack>();
  client_->publish(room, data, key, [p = p](result<ack> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "publish");
}

history_reply blocking_connection::history(const std::string& room, std::uint64_t since,
                                           std::uint32_t limit, duration timeout) {
  auto [p, f] = make_promise<history_reply>();
  client_->history(
      room, since, [p = p](result<history_reply> r) { p->set_value(std::move(r)); }, limit);
  return wait_for(f, timeout, "history");
}

void blocking_connection::ping(duration timeout) {
  auto [p, f] = make_promise<nothing>();
  client_->ping([p = p](result<nothing> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "ping");
}

value blocking_connection::rpc(const std::string& method, const value& data, duration timeout) {
  auto [p, f] = make_promise<value>();
  client_->rpc(method, data, [p = p](result<value> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "rpc");
}

void blocking_connection::close(duration timeout) {
  client_->close();
  wait_state(connection_state::closed, timeout);
}

template <class T>
std::optional<T> blocking_connection::pop(std::deque<T>& q, duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  if (!cv_.wait_for(l, timeout, [&] { return !q.empty(); })) return std::nullopt;
  T v = std::move(q.front());
  q.pop_front();
  return v;
}

std::optional<message> blocking_connection::next_message(duration timeout) {
  return pop(messages_, timeout);
}

std::vector<message> blocking_connection::take_messages(std::size_t n, duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  if (!cv_.wait_for(l, timeout, [&] { return messages_.size() >= n; }))
    throw client_error(error{errc::timeout, "expected " + std::to_string(n) + " messages, got " +
                                                std::to_string(messages_.size())});
  std::vector<message> out(std::make_move_iterator(messages_.begin()),
                           std::make_move_iterator(messages_.begin() + static_cast<long>(n)));
  messages_.erase(messages_.begin(), messages_.begin() + static_cast<long>(n));
  return out;
}

std::size_t blocking_connection::queued_messages() {
  std::lock_guard<std::mutex> l(m_);
  return messages_.size();
}

std::optional<subscribed_event> blocking_connection::next_subscribed(duration timeout) {
  return pop(subscribed_, timeout);
}

std::optional<state_event> blocking_connection::next_state(duration timeout) {
  return pop(states_, timeout);
}

state_event blocking_connection::wait_state(connection_state state, duration timeout) {
  return take_states_until([state](const state_event& e) { return e.state == state; }, timeout,
                           std::string("state ") + to_string(state) + " not reached in time");
}

state_event
blocking_connection::take_states_until(const std::function<bool(const state_event&)>& pred,
                                       duration timeout, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(m_);
  for (;;) {
    while (!states_.empty()) {
      state_event ev = std::move(states_.front());
      states_.pop_front();
      if (pred(ev)) return ev;
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout && states_.empty())
      throw client_error(error{errc::timeout, what});
  }
}

std::vector<error> blocking_connection::errors() {
  std::lock_guard<std::mutex> l(m_);
  return errors_;
}

} // namespace troupe::client

namespace troupe::client {

void blocking_connection::set_state(const std::string& room, const value& state, duration timeout) {
  auto [p, f] = make_promise<nothing>();
  client_->set_state(room, state, [p = p](result<nothing> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "set_state");
}

presence_snapshot blocking_connection::presence(const std::string& room, duration timeout) {
  auto [p, f] = make_promise<presence_snapshot>();
  client_->presence(room, [p = p](result<presence_snapshot> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "presence");
}

presence_snapshot blocking_connection::view(const std::string& room) {
  std::lock_guard<std::mutex> l(m_);
  auto it = views_.find(room);
  if (it == views_.end()) {
    presence_snapshot s;
    s.room = room;
    return s;
  }
  return it->second;
}

namespace {
std::string describe(const presence_snapshot& s) {
  std::string out = "pseq " + std::to_string(s.pseq) + ", members:";
  for (const auto& [client, e] : s.members.by_client()) {
    out += " " + e.user + "/" + client;
    if (!e.state.is_nil()) out += "{state " + e.state.to_string() + "}";
  }
  out += ", typing:";
  for (const auto& [client, user] : s.typing)
    out += " " + user + "/" + client;
  return out;
}
} // namespace

presence_snapshot
blocking_connection::wait_view(const std::string& room,
                               const std::function<bool(const presence_snapshot&)>& pred,
                               duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  auto current = [&] {
    auto it = views_.find(room);
    return it == views_.end() ? presence_snapshot{room, 0, {}, {}} : it->second;
  };
  presence_snapshot got;
  if (!cv_.wait_for(l, timeout, [&] {
        got = current();
        return pred(got);
      }))
    throw client_error(
        error{errc::timeout,
              "presence view of " + room + " not as expected in time; last: " + describe(got)});
  return got;
}

std::optional<error> blocking_connection::wait_error(const std::string& code, duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  std::optional<error> found;
  cv_.wait_for(l, timeout, [&] {
    for (const auto& e : errors_)
      if (e.code == code) {
        found = e;
        return true;
      }
    return false;
  });
  return found;
}

std::optional<presence_event> blocking_connection::next_presence(duration timeout) {
  return pop(presence_, timeout);
}

std::size_t blocking_connection::queued_presence() {
  std::lock_guard<std::mutex> l(m_);
  return presence_.size();
}

std::optional<typing_event> blocking_connection::next_typing(duration timeout) {
  return pop(typing_, timeout);
}

} // namespace troupe::client

#include "clients/cpp/blocking_client.hpp"

#include <future>

#include <boost/asio/post.hpp>

namespace troupe::client {

namespace {

template <class T>
T wait_for(std::future<Result<T>>& f, std::chrono::milliseconds timeout, const char* what) {
  if (f.wait_for(timeout) != std::future_status::ready)
    throw ClientError(Error{errc::timeout, std::string(what) + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw ClientError(r.error());
  return std::move(r.value());
}

template <class T>
std::pair<std::shared_ptr<std::promise<Result<T>>>, std::future<Result<T>>> make_promise() {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  return {p, std::move(f)};
}

}  // namespace

BlockingClient::BlockingClient(Options opts) : own_io_(std::make_unique<boost::asio::io_context>(1)) {
  work_.emplace(own_io_->get_executor());
  client_ = std::make_unique<Client>(own_io_->get_executor(), std::move(opts));
  init();
  thread_ = std::thread([io = own_io_.get()] { io->run(); });
}

BlockingClient::BlockingClient(boost::asio::any_io_executor ex, Options opts) {
  client_ = std::make_unique<Client>(std::move(ex), std::move(opts));
  init();
}

void BlockingClient::init() {
  client_->on_state([this](const StateEvent& ev) {
    std::lock_guard<std::mutex> l(m_);
    current_ = ev.state;
    states_.push_back(ev);
    cv_.notify_all();
  });
  client_->on_error([this](const Error& e) {
    std::lock_guard<std::mutex> l(m_);
    errors_.push_back(e);
    cv_.notify_all();
  });
}

BlockingClient::~BlockingClient() {
  bool live;
  {
    std::lock_guard<std::mutex> l(m_);
    live = current_ != State::idle && current_ != State::closed;
  }
  if (live) {  // close gracefully, briefly
    client_->close();
    std::unique_lock<std::mutex> l(m_);
    cv_.wait_for(l, std::chrono::seconds(2), [&] { return current_ == State::closed; });
  }
  client_.reset();  // no callback runs after this
  if (own_io_) {
    // Let the I/O thread run what the Client posted on its way out, then stop it. (The
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

ConnectedInfo BlockingClient::connect(Duration timeout) {
  client_->start();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(m_);
  for (;;) {
    while (!states_.empty()) {
      StateEvent ev = std::move(states_.front());
      states_.pop_front();
      if (ev.state == State::connected) return ev.info;
      if (ev.state == State::closed)
        throw ClientError(Error{errc::refused, "closed while connecting: " + ev.reason});
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout && states_.empty())
      throw ClientError(Error{errc::timeout, "not connected in time"});
  }
}

SubscribedEvent BlockingClient::subscribe(const std::string& room, Duration timeout) {
  auto [p, f] = make_promise<SubscribedEvent>();
  RoomHandlers h;
  h.on_message = [this](const Message& m) {
    std::lock_guard<std::mutex> l(m_);
    messages_.push_back(m);
    cv_.notify_all();
  };
  h.on_subscribed = [this](const SubscribedEvent& ev) {
    std::lock_guard<std::mutex> l(m_);
    subscribed_.push_back(ev);
    cv_.notify_all();
  };
  h.on_error = [this](const Error& e) {
    std::lock_guard<std::mutex> l(m_);
    errors_.push_back(e);
  };
  h.on_presence = [this](const PresenceEvent& ev) {
    std::lock_guard<std::mutex> l(m_);
    if (ev.view) views_[ev.room] = ev.view->snapshot();
    presence_.push_back(ev);
    presence_.back().view = nullptr;
    cv_.notify_all();
  };
  h.on_typing = [this](const TypingEvent& ev) {
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
  client_->subscribe(room, std::move(h), [p = p](Result<SubscribedEvent> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "subscribe");
}

void BlockingClient::unsubscribe(const std::string& room, Duration timeout) {
  auto [p, f] = make_promise<Done>();
  client_->unsubscribe(room, [p = p](Result<Done> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "unsubscribe");
}

Ack BlockingClient::publish(const std::string& room, const Value& data, Duration timeout) {
  auto [p, f] = make_promise<Ack>();
  client_->publish(room, data, [p = p](Result<Ack> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "publish");
}

Ack BlockingClient::publish(const std::string& room, const Value& data, const std::string& key,
                            Duration timeout) {
  auto [p, f] = make_promise<Ack>();
  client_->publish(room, data, key, [p = p](Result<Ack> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "publish");
}

HistoryReply BlockingClient::history(const std::string& room, std::uint64_t since, std::uint32_t limit,
                                     Duration timeout) {
  auto [p, f] = make_promise<HistoryReply>();
  client_->history(room, since, [p = p](Result<HistoryReply> r) { p->set_value(std::move(r)); }, limit);
  return wait_for(f, timeout, "history");
}

void BlockingClient::ping(Duration timeout) {
  auto [p, f] = make_promise<Done>();
  client_->ping([p = p](Result<Done> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "ping");
}

void BlockingClient::close(Duration timeout) {
  client_->close();
  wait_state(State::closed, timeout);
}

template <class T>
std::optional<T> BlockingClient::pop(std::deque<T>& q, Duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  if (!cv_.wait_for(l, timeout, [&] { return !q.empty(); })) return std::nullopt;
  T v = std::move(q.front());
  q.pop_front();
  return v;
}

std::optional<Message> BlockingClient::next_message(Duration timeout) { return pop(messages_, timeout); }

std::vector<Message> BlockingClient::take_messages(std::size_t n, Duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  if (!cv_.wait_for(l, timeout, [&] { return messages_.size() >= n; }))
    throw ClientError(Error{errc::timeout, "expected " + std::to_string(n) + " messages, got " +
                                               std::to_string(messages_.size())});
  std::vector<Message> out(std::make_move_iterator(messages_.begin()),
                           std::make_move_iterator(messages_.begin() + static_cast<long>(n)));
  messages_.erase(messages_.begin(), messages_.begin() + static_cast<long>(n));
  return out;
}

std::size_t BlockingClient::queued_messages() {
  std::lock_guard<std::mutex> l(m_);
  return messages_.size();
}

std::optional<SubscribedEvent> BlockingClient::next_subscribed(Duration timeout) {
  return pop(subscribed_, timeout);
}

std::optional<StateEvent> BlockingClient::next_state(Duration timeout) { return pop(states_, timeout); }

StateEvent BlockingClient::wait_state(State state, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(m_);
  for (;;) {
    while (!states_.empty()) {
      StateEvent ev = std::move(states_.front());
      states_.pop_front();
      if (ev.state == state) return ev;
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout && states_.empty())
      throw ClientError(Error{errc::timeout, std::string("state ") + to_string(state) + " not reached in time"});
  }
}

std::vector<Error> BlockingClient::errors() {
  std::lock_guard<std::mutex> l(m_);
  return errors_;
}

}  // namespace troupe::client

namespace troupe::client {

void BlockingClient::set_state(const std::string& room, const Value& state, Duration timeout) {
  auto [p, f] = make_promise<Done>();
  client_->set_state(room, state, [p = p](Result<Done> r) { p->set_value(std::move(r)); });
  wait_for(f, timeout, "set_state");
}

PresenceSnapshot BlockingClient::presence(const std::string& room, Duration timeout) {
  auto [p, f] = make_promise<PresenceSnapshot>();
  client_->presence(room, [p = p](Result<PresenceSnapshot> r) { p->set_value(std::move(r)); });
  return wait_for(f, timeout, "presence");
}

PresenceSnapshot BlockingClient::view(const std::string& room) {
  std::lock_guard<std::mutex> l(m_);
  auto it = views_.find(room);
  if (it == views_.end()) {
    PresenceSnapshot s;
    s.room = room;
    return s;
  }
  return it->second;
}

namespace {
std::string describe(const PresenceSnapshot& s) {
  std::string out = "pseq " + std::to_string(s.pseq) + ", members:";
  for (const auto& [client, e] : s.members.by_client()) {
    out += " " + e.user + "/" + client;
    if (!e.state.is_nil()) out += "{state " + e.state.to_string() + "}";
  }
  out += ", typing:";
  for (const auto& [client, user] : s.typing) out += " " + user + "/" + client;
  return out;
}
}  // namespace

PresenceSnapshot BlockingClient::wait_view(const std::string& room,
                                           const std::function<bool(const PresenceSnapshot&)>& pred,
                                           Duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  auto current = [&] {
    auto it = views_.find(room);
    return it == views_.end() ? PresenceSnapshot{room, 0, {}, {}} : it->second;
  };
  PresenceSnapshot got;
  if (!cv_.wait_for(l, timeout, [&] {
        got = current();
        return pred(got);
      }))
    throw ClientError(Error{errc::timeout, "presence view of " + room + " not as expected in time; last: " +
                                               describe(got)});
  return got;
}

std::optional<Error> BlockingClient::wait_error(const std::string& code, Duration timeout) {
  std::unique_lock<std::mutex> l(m_);
  std::optional<Error> found;
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

std::optional<PresenceEvent> BlockingClient::next_presence(Duration timeout) { return pop(presence_, timeout); }

std::size_t BlockingClient::queued_presence() {
  std::lock_guard<std::mutex> l(m_);
  return presence_.size();
}

std::optional<TypingEvent> BlockingClient::next_typing(Duration timeout) { return pop(typing_, timeout); }

}  // namespace troupe::client

// session: requests matched to replies by id, their deadlines, and the sweep.
#include "clients/cpp/session.hpp"

#include "clients/cpp/ws_connection.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

void session::send_request(std::uint64_t id, std::string frame, reply_handler handler,
                           bool resend) {
  if (state_ == connection_state::closed) {
    if (handler) handler(error{errc::closed, "the client is closed"});
    return;
  }
  request_table::entry e;
  e.handler = std::move(handler);
  e.deadline = clock::now() + opts_.request_timeout;
  e.resend = resend;
  if (connected_ && conn_) {
    e.sent = true;
    if (resend) e.frame = frame;
    conn_->send(std::move(frame));
  } else {
    e.frame = std::move(frame);
  }
  requests_.add(id, std::move(e));
  arm_sweep();
}

void session::send_oneway(std::string frame) {
  if (connected_ && conn_) conn_->send(std::move(frame));
}

void session::send_internal(std::string, std::uint64_t id, std::string frame, reply_handler h) {
  request_table::entry e;
  e.handler = std::move(h);
  e.deadline = clock::now() + opts_.request_timeout;
  e.sent = true;
  requests_.add(id, std::move(e));
  if (conn_) conn_->send(std::move(frame));
  arm_sweep();
}

void session::fail_requests(std::vector<request_table::entry> entries, const error& e) {
  for (auto& entry : entries)
    if (entry.handler) entry.handler(e);
}

void session::arm_sweep() {
  if (sweep_armed_ || requests_.empty()) return;
  const auto deadline = requests_.earliest_deadline();
  if (!deadline) return;
  sweep_armed_ = true;
  sweep_timer_.expires_at(*deadline + std::chrono::milliseconds(1));
  std::weak_ptr<session> w = weak_from_this();
  sweep_timer_.async_wait([w](boost::system::error_code) {
    if (auto s = w.lock()) {
      s->sweep_armed_ = false;
      s->sweep();
      s->arm_sweep();
    }
  });
}

void session::sweep() {
  fail_requests(requests_.take_expired(clock::now()),
                error{errc::timeout, "no reply within the request timeout"});
}

} // namespace troupe::client

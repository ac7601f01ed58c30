#include "connection.hpp"

#include <boost/beast/websocket.hpp>

namespace bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

Connection::Connection(net::io_context& ioc, Dialect& dialect, Listener& listener,
                       std::uint32_t index)
    : ws_(ioc.get_executor()), dialect_(dialect), listener_(listener), index_(index) {}

Connection::~Connection() = default;

void Connection::start(const tcp::endpoint& server) {
  state_ = State::Connecting;
  ws_.next_layer().async_connect(server, [self = shared_from_this(), server](beast::error_code ec) {
    self->upgrade(ec, server);
  });
}

void Connection::upgrade(beast::error_code ec, const tcp::endpoint& server) {
  if (ec) return fail(ec.message());
  if (state_ != State::Connecting) return;
  ws_.next_layer().set_option(tcp::no_delay(true), ec);
  ws_.auto_fragment(false);
  ws_.read_message_max(16u << 20);
  ws_.secure_prng(false); // masking keys need no cryptographic strength here
  ws_.binary(true);
  ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "troupe-loadgen");
  }));
  std::string host = server.address().to_string() + ":" + std::to_string(server.port());
  ws_.async_handshake(host, std::string(dialect_.target()),
                      [self = shared_from_this()](beast::error_code ec) { self->join(ec); });
}

void Connection::join(beast::error_code ec) {
  if (ec) return fail("handshake: " + ec.message());
  if (state_ != State::Connecting) return;
  state_ = State::Joining;
  read_next();
  if (dialect_.client_speaks_first())
    send(dialect_.connect(next_id_++, "u" + std::to_string(index_)));
}

void Connection::subscribe(std::string room) {
  room_ = std::move(room);
  state_ = State::Subscribing;
  sub_id_ = next_id_++;
  send(dialect_.subscribe(sub_id_, room_));
}

void Connection::resubscribe(std::string room, std::uint64_t seq, std::string epoch) {
  room_ = std::move(room);
  state_ = State::Subscribing;
  sub_id_ = next_id_++;
  resub_ = true;
  since_ = seq;
  send(dialect_.subscribe_since(sub_id_, room_, seq, epoch));
}

std::uint64_t Connection::publish(const std::uint8_t* data, std::size_t n, std::string_view key) {
  const std::uint64_t id = next_id_++;
  send(key.empty() ? dialect_.publish(id, room_, data, n)
                   : dialect_.publish_keyed(id, room_, data, n, key));
  return id;
}

void Connection::close() {
  if (state_ == State::Closed || state_ == State::Closing) return;
  if (state_ == State::Idle || state_ == State::Connecting) return abort();
  state_ = State::Closing;
  ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
    // The read loop sees the end of the stream and reports the close.
  });
}

void Connection::abort() { fail("aborted"); }

void Connection::fail(std::string_view why) {
  if (state_ == State::Closed) return;
  State was = state_;
  state_ = State::Closed;
  beast::error_code ec;
  ws_.next_layer().close(ec);
  listener_.on_closed(*this, was, why);
}

void Connection::send(Outgoing out) {
  if (state_ == State::Closed || state_ == State::Closing) return;
  queue_.push_back(std::move(out));
  if (!writing_) write_next();
}

void Connection::write_next() {
  writing_ = true;
  Outgoing& front = queue_.front(); // deque: stays put while later ones are queued
  ws_.text(front.text);
  ws_.async_write(net::buffer(front.bytes),
                  [self = shared_from_this()](beast::error_code ec, std::size_t) {
                    self->writing_ = false;
                    if (ec) return self->fail("write: " + ec.message());
                    self->queue_.pop_front();
                    if (!self->queue_.empty() && self->state_ != State::Closed) self->write_next();
                  });
}

void Connection::read_next() {
  ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    // Aborted meanwhile (a read that had completed is still delivered after the close):
    // a closed connection passes nothing on.
    if (self->state_ == State::Closed) return;
    if (ec) {
      return self->fail(ec == websocket::error::closed ? std::string("closed by peer")
                                                       : "read: " + ec.message());
    }
    auto bytes = self->in_.cdata();
    if (self->record) {
      self->record->push_back(
          {now_ns(), std::string(static_cast<const char*>(bytes.data()), bytes.size())});
    }
    if (!self->dialect_.parse(static_cast<const char*>(bytes.data()), bytes.size(),
                              self->ws_.got_text(), *self)) {
      self->listener_.on_error(*self, "unparsable");
    }
    self->in_.consume(self->in_.size());
    if (self->state_ != State::Closed) self->read_next();
  });
}

void Connection::on_transport_open() {
  if (state_ == State::Joining) {
    send(dialect_.connect(next_id_++, "u" + std::to_string(index_)));
  }
}

void Connection::on_transport_ping() { send(dialect_.transport_pong()); }

void Connection::on_connected(std::string_view client) {
  if (state_ != State::Joining) return;
  client_ = client;
  state_ = State::Ready;
  listener_.on_ready(*this);
}

void Connection::on_reply(std::uint64_t id, std::uint64_t seq) {
  if (id == sub_id_ && state_ == State::Subscribing) {
    last_seq_ = seq;
    state_ = State::Subscribed;
    listener_.on_subscribed(*this);
  } else {
    listener_.on_ack(*this, id, seq);
  }
}

void Connection::on_subscribed(std::uint64_t id, std::uint64_t seq, std::string_view epoch,
                               bool recovered) {
  if (id != sub_id_ || state_ != State::Subscribing) return on_reply(id, seq);
  epoch_ = epoch;
  recovered_ = recovered;
  if (!resub_) return on_reply(id, seq);
  // The reply's msgs follow: check them from `since` on, as pushes.
  last_seq_ = since_;
  state_ = State::Subscribed;
  listener_.on_subscribed(*this);
}

void Connection::on_history_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) {
  if (resub_ && state_ == State::Subscribed) on_msg(seq, data, n);
}

void Connection::on_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) {
  // seq 0: the server numbers nothing (Socket.IO with its Redis adapter); no order check.
  if (seq == 0) {
  } else if (seq > last_seq_ + 1) {
    gaps_ += seq - last_seq_ - 1;
  } else if (seq <= last_seq_) {
    ++dups_;
  }
  if (seq > last_seq_) last_seq_ = seq;
  listener_.on_msg(*this, seq, data, n);
}

void Connection::on_error(std::uint64_t id, std::string_view code) {
  // A refused connect or sub would otherwise leave the scenario waiting for its timeout.
  if (state_ == State::Joining || (state_ == State::Subscribing && id == sub_id_)) {
    return fail("refused: " + std::string(code));
  }
  listener_.on_request_error(*this, id, code);
  listener_.on_error(*this, code);
}

void Connection::on_presence_counts(std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                                    std::size_t leaves) {
  listener_.on_presence(*this, id, pseq, joins, leaves);
}

void Connection::on_server_disconnect(std::string_view why) {
  listener_.on_error(*this, "disconnect");
}

} // namespace bench

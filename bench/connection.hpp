#pragma once
#include "asio.hpp"
#include "dialect.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace bench {

// A received WebSocket message and when its read completed.
struct RecordedFrame {
  std::int64_t t_ns = 0;
  std::string bytes;
};

// One WebSocket client connection of the load generator: TCP connect, WebSocket upgrade,
// the dialect's connect handshake, then one room subscription and publishes. Reads run
// continuously (that also answers WebSocket pings); writes go through a queue, one
// async_write at a time. Everything runs on the single io_context thread.
class Connection : public std::enable_shared_from_this<Connection>, private DialectSink {
public:
  enum class State { Idle, Connecting, Joining, Ready, Subscribing, Subscribed, Closing, Closed };

  // Receives every connection's events; implemented by the scenario runner.
  class Listener {
  public:
    virtual ~Listener() = default;
    virtual void on_ready(Connection&) = 0;
    virtual void on_subscribed(Connection&) = 0;
    virtual void on_ack(Connection&, std::uint64_t id, std::uint64_t seq) = 0;
    // A push, or (after a resubscription with `since`) a message of the reply's `msgs`.
    virtual void on_msg(Connection&, std::uint64_t seq, const std::uint8_t* data,
                        std::size_t n) = 0;
    virtual void on_error(Connection&, std::string_view code) = 0;
    // The same error with the request's id, first (0 for errors without one).
    virtual void on_request_error(Connection&, std::uint64_t id, std::string_view code) {}
    virtual void on_closed(Connection&, State was, std::string_view why) = 0;
    virtual void on_presence(Connection&, std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                             std::size_t leaves) {}
  };

  Connection(net::io_context& ioc, Dialect& dialect, Listener& listener, std::uint32_t index);
  ~Connection() override;

  void start(const tcp::endpoint& server);
  void subscribe(std::string room);
  // Subscribes with `since`: the reply's msgs are delivered as pushes, gap-checked from
  // `seq` on (Troupe's recovery after a reconnect).
  void resubscribe(std::string room, std::uint64_t seq, std::string epoch);
  // Returns the request's id.
  std::uint64_t publish(const std::uint8_t* data, std::size_t n, std::string_view key = {});
  void close(); // WebSocket close handshake; the read loop ends when the server answers
  void abort(); // drop the socket now

  State state() const { return state_; }
  std::uint32_t index() const { return index_; }
  const std::string& room() const { return room_; }
  std::uint32_t room_index = 0; // set by the runner
  std::uint32_t node = 0;       // which server (index into the runner's endpoints)
  std::uint64_t last_seq() const { return last_seq_; }
  const std::string& epoch() const { return epoch_; }
  bool recovered() const { return recovered_; }
  std::uint64_t gaps() const { return gaps_; }
  std::uint64_t dups() const { return dups_; }
  std::size_t queued() const { return queue_.size(); }
  const std::string& client() const { return client_; } // the server's id for it
  // When set, every received message is also kept here, to be checked later.
  std::vector<RecordedFrame>* record = nullptr;

private:
  void upgrade(boost::system::error_code ec, const tcp::endpoint& server);
  void join(boost::system::error_code ec);
  void send(Outgoing out);
  void write_next();
  void read_next();
  void fail(std::string_view why);

  // DialectSink
  void on_transport_open() override;
  void on_transport_ping() override;
  void on_connected(std::string_view client) override;
  void on_reply(std::uint64_t id, std::uint64_t seq) override;
  void on_subscribed(std::uint64_t id, std::uint64_t seq, std::string_view epoch,
                     bool recovered) override;
  void on_history_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) override;
  void on_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) override;
  void on_error(std::uint64_t id, std::string_view code) override;
  void on_server_disconnect(std::string_view why) override;
  void on_presence_counts(std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                          std::size_t leaves) override;

  // The concrete executor type spares every handler the type-erased any_io_executor
  // copies, which showed in the generator's profile.
  using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;
  boost::beast::websocket::stream<Socket> ws_;
  boost::beast::flat_buffer in_;
  std::deque<Outgoing> queue_;
  bool writing_ = false;
  Dialect& dialect_;
  Listener& listener_;
  std::uint32_t index_;
  State state_ = State::Idle;
  std::string room_;
  std::string client_;
  std::uint64_t next_id_ = 1;
  std::uint64_t sub_id_ = 0;
  std::uint64_t last_seq_ = 0; // per-room order check: the room's pushes must be gap-free
  std::uint64_t since_ = 0;    // resubscription: the seq it recovers from
  bool resub_ = false;
  bool recovered_ = false;
  std::string epoch_;
  std::uint64_t gaps_ = 0;
  std::uint64_t dups_ = 0;
};

} // namespace bench

// A bare WebSocket connection for tests that send what no client library would: text
// frames, oversized frames, garbage, or that stop reading. Every operation is bounded.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "clients/cpp/reply.hpp"

namespace troupe::test {

using namespace std::chrono_literals;

class RawWs {
public:
  struct Frame {
    bool closed = false; // the server closed the connection (see close_code)
    std::uint16_t close_code = 0;
    std::string close_reason;
    std::string error; // a transport error (reset, timeout…), if any
    bool text = false;
    std::string bytes;
    std::vector<client::reply> maps;
    bool decoded = true; // every byte was MessagePack
  };

  // TCP connect + WebSocket handshake. `rcvbuf` > 0 shrinks the socket's receive buffer.
  explicit RawWs(int port, int rcvbuf = 0, std::chrono::milliseconds timeout = 10s);
  ~RawWs();

  void send_binary(const std::string& bytes, std::chrono::milliseconds timeout = 10s);
  void send_text(const std::string& text, std::chrono::milliseconds timeout = 10s);
  // The next frame (or the close / an error).
  Frame read(std::chrono::milliseconds timeout = 10s);
  // Reads until a map with this id arrives; its frame's other maps are dropped.
  client::reply read_reply(std::uint64_t id, std::chrono::milliseconds timeout = 10s);
  // Reads (and drops) everything until the connection ends; returns the ending.
  Frame read_until_closed(std::chrono::milliseconds timeout = 10s, std::size_t* frames = nullptr,
                          std::vector<client::reply>* maps = nullptr);
  // Writes a frame while reading: for a frame the server refuses mid-way. Returns the ending.
  Frame send_and_expect_close(const std::string& bytes, std::chrono::milliseconds timeout = 10s);

  // Reads the TCP stream below the WebSocket (so nothing, not even a pong, is answered)
  // until a close frame or the end; returns every byte the server sent.
  std::string drain_tcp_until_close(std::chrono::milliseconds timeout = 10s);
  // The same until `done(bytes so far)` or the end; `ended` tells whether the server closed
  // the TCP connection.
  std::string drain_tcp_until(const std::function<bool(const std::string&)>& done,
                              std::chrono::milliseconds timeout = 10s, bool* ended = nullptr);
  // Writes `bytes` to the TCP stream below the WebSocket as they are (frames built by the
  // test), in writes of `piece` bytes each (0: one write), with Nagle off.
  void send_tcp(const std::string& bytes, std::size_t piece = 0,
                std::chrono::milliseconds timeout = 10s);
  // A client frame: FIN (unless !fin), RSV bits `rsv` (0–7), masked (unless !masked).
  static std::string client_frame(unsigned opcode, const std::string& payload, bool fin = true,
                                  bool masked = true, unsigned rsv = 0);
  // The frames (opcode, payload) in a byte stream of server frames; a partial one is left out.
  static std::vector<std::pair<unsigned, std::string>> frames_in(const std::string& server_bytes);
  // The status code of the first close frame among them, or -1 if there is none.
  static int close_code_in(const std::string& server_bytes);

  // `connect` with this user; returns the `connected` reply.
  client::reply hello(const std::string& user = "raw", std::chrono::milliseconds timeout = 10s);
  // A request map `{t, id, …}` built by `fields`; returns the reply with that id.
  std::uint64_t next_id() { return ++last_id_; }

private:
  void run(bool& done, std::chrono::milliseconds timeout, const char* what);

  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buf_;
  std::uint64_t last_id_ = 1000;
};

} // namespace troupe::test

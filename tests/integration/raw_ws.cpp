#include "raw_ws.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"

namespace troupe::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

RawWs::RawWs(int port, int rcvbuf, std::chrono::milliseconds timeout) : ws_(io_) {
  auto& sock = beast::get_lowest_layer(ws_).socket();
  sock.open(net::ip::tcp::v4());
  if (rcvbuf > 0) sock.set_option(net::socket_base::receive_buffer_size(rcvbuf));
  bool done = false;
  error_code result;
  net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  sock.async_connect(ep, [&](error_code ec) {
    result = ec;
    done = true;
  });
  run(done, timeout, "connect");
  if (result) throw std::runtime_error("connect: " + result.message());
  ws_.read_message_max(64 * 1024 * 1024);
  ws_.auto_fragment(false);
  done = false;
  ws_.async_handshake("127.0.0.1:" + std::to_string(port), "/ws", [&](error_code ec) {
    result = ec;
    done = true;
  });
  run(done, timeout, "handshake");
  if (result) throw std::runtime_error("handshake: " + result.message());
}

RawWs::~RawWs() {
  error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void RawWs::run(bool& done, std::chrono::milliseconds timeout, const char* what) {
  io_.restart();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io_.run_one_until(deadline);
  }
  if (!done) {
    // Abort the operation and let its handler run, so nothing refers to this frame later.
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    io_.restart();
    while (!done)
      io_.run_one_for(std::chrono::seconds(1));
    throw std::runtime_error(std::string(what) + ": timed out");
  }
}

void RawWs::send_binary(const std::string& bytes, std::chrono::milliseconds timeout) {
  ws_.binary(true);
  bool done = false;
  error_code result;
  ws_.async_write(net::buffer(bytes), [&](error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  run(done, timeout, "write");
  if (result) throw std::runtime_error("write: " + result.message());
}

void RawWs::send_text(const std::string& text, std::chrono::milliseconds timeout) {
  ws_.text(true);
  bool done = false;
  error_code result;
  ws_.async_write(net::buffer(text), [&](error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  run(done, timeout, "write");
  ws_.binary(true);
  if (result) throw std::runtime_error("write: " + result.message());
}

namespace {
RawWs::Frame ending(error_code ec, const websocket::close_reason& r) {
  RawWs::Frame f;
  // A close frame may have arrived even if answering it failed (the peer already hung up).
  if (ec == websocket::error::closed || r.code != websocket::close_code::none) {
    f.closed = true;
    f.close_code = static_cast<std::uint16_t>(r.code);
    f.close_reason = std::string(r.reason.c_str());
    if (ec != websocket::error::closed) f.error = ec.message();
  } else {
    f.error = ec.message();
  }
  return f;
}
} // namespace

RawWs::Frame RawWs::read(std::chrono::milliseconds timeout) {
  bool done = false;
  error_code result;
  buf_.clear();
  ws_.async_read(buf_, [&](error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  run(done, timeout, "read");
  if (result) return ending(result, ws_.reason());
  Frame f;
  f.text = ws_.got_text();
  const auto d = buf_.cdata();
  f.bytes.assign(static_cast<const char*>(d.data()), d.size());
  f.decoded = client::split_frame(f.bytes, f.maps);
  return f;
}

client::reply RawWs::read_reply(std::uint64_t id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("no reply with id " + std::to_string(id));
    Frame f = read(left);
    if (f.closed || !f.error.empty())
      throw std::runtime_error("connection ended waiting for id " + std::to_string(id) + ": code " +
                               std::to_string(f.close_code) + " " + f.close_reason + f.error);
    for (auto& m : f.maps)
      if (m.map().u64("id") == id) return m;
  }
}

RawWs::Frame RawWs::read_until_closed(std::chrono::milliseconds timeout, std::size_t* frames,
                                      std::vector<client::reply>* maps) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("the connection did not end in time");
    Frame f = read(left);
    if (f.closed || !f.error.empty()) return f;
    if (frames) ++*frames;
    if (maps) maps->insert(maps->end(), f.maps.begin(), f.maps.end());
  }
}

RawWs::Frame RawWs::send_and_expect_close(const std::string& bytes,
                                          std::chrono::milliseconds timeout) {
  ws_.binary(true);
  bool wrote = false, read_done = false;
  error_code read_ec;
  ws_.async_write(net::buffer(bytes), [&](error_code, std::size_t) { wrote = true; });
  buf_.clear();
  std::function<void()> read_next;
  read_next = [&] {
    ws_.async_read(buf_, [&](error_code ec, std::size_t) {
      if (!ec) {
        buf_.clear();
        return read_next();
      }
      read_ec = ec;
      read_done = true;
    });
  };
  read_next();
  bool both = false;
  io_.restart();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!(read_done && wrote) && std::chrono::steady_clock::now() < deadline)
    io_.run_one_until(deadline);
  both = read_done && wrote;
  if (!both) {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    io_.restart();
    while (!(read_done && wrote))
      io_.run_one_for(std::chrono::seconds(1));
    if (!read_done) throw std::runtime_error("the connection did not end in time");
  }
  return ending(read_ec, ws_.reason());
}

std::string RawWs::drain_tcp_until_close(std::chrono::milliseconds timeout) {
  return drain_tcp_until([](const std::string& out) { return close_code_in(out) != -1; }, timeout);
}

std::string RawWs::drain_tcp_until(const std::function<bool(const std::string&)>& until,
                                   std::chrono::milliseconds timeout, bool* ended) {
  std::string out;
  auto& sock = beast::get_lowest_layer(ws_).socket();
  char chunk[4096];
  bool done = false;
  if (ended) *ended = false;
  std::function<void()> next;
  next = [&] {
    sock.async_read_some(net::buffer(chunk), [&](error_code ec, std::size_t n) {
      out.append(chunk, n);
      if (ec && ended) *ended = true;
      if (ec || until(out)) {
        done = true;
        return;
      }
      next();
    });
  };
  next();
  run(done, timeout, "drain");
  return out;
}

void RawWs::send_tcp(const std::string& bytes, std::size_t piece,
                     std::chrono::milliseconds timeout) {
  auto& sock = beast::get_lowest_layer(ws_).socket();
  sock.set_option(net::ip::tcp::no_delay(true));
  if (piece == 0) piece = bytes.size();
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    bool done = false;
    error_code result;
    net::async_write(sock, net::buffer(bytes.data() + at, std::min(piece, bytes.size() - at)),
                     [&](error_code ec, std::size_t) {
                       result = ec;
                       done = true;
                     });
    run(done, timeout, "raw write");
    if (result) throw std::runtime_error("raw write: " + result.message());
  }
}

std::string RawWs::client_frame(unsigned opcode, const std::string& payload, bool fin, bool masked,
                                unsigned rsv) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  const unsigned mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((std::uint64_t{payload.size()} >> (8 * i)) & 0xff));
  }
  const unsigned char key[4] = {0x5a, 0x01, 0xf3, 0x7c};
  if (masked) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ (masked ? key[i & 3] : 0)));
  return out;
}

std::vector<std::pair<unsigned, std::string>> RawWs::frames_in(const std::string& b) {
  std::vector<std::pair<unsigned, std::string>> out;
  std::size_t i = 0;
  while (i + 2 <= b.size()) {
    const unsigned op = static_cast<unsigned char>(b[i]) & 0x0f;
    std::uint64_t len = static_cast<unsigned char>(b[i + 1]) & 0x7f;
    const bool masked = static_cast<unsigned char>(b[i + 1]) & 0x80;
    std::size_t h = 2;
    if (len == 126) {
      if (i + 4 > b.size()) break;
      len = (static_cast<unsigned char>(b[i + 2]) << 8) | static_cast<unsigned char>(b[i + 3]);
      h = 4;
    } else if (len == 127) {
      if (i + 10 > b.size()) break;
      len = 0;
      for (int k = 0; k < 8; ++k)
        len = (len << 8) | static_cast<unsigned char>(b[i + 2 + k]);
      h = 10;
    }
    if (masked) h += 4; // servers do not mask; skip the key if one did
    if (i + h + len > b.size()) break;
    out.emplace_back(op, b.substr(i + h, static_cast<std::size_t>(len)));
    i += h + static_cast<std::size_t>(len);
  }
  return out;
}

int RawWs::close_code_in(const std::string& b) {
  for (const auto& [op, payload] : frames_in(b)) {
    if (op != 0x8) continue;
    if (payload.size() < 2) return 1005; // no status code
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  }
  return -1;
}

client::reply RawWs::hello(const std::string& user, std::chrono::milliseconds timeout) {
  const auto id = next_id();
  client::map_writer w("connect");
  w.u64("id", id).str("user", user);
  send_binary(w.finish(), timeout);
  return read_reply(id, timeout);
}

} // namespace troupe::test

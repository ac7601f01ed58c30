// troupe_floor: the one-write floor of bench/run.sh (server kind `floor`). A WebSocket server
// on one thread and raw epoll that speaks the subset of Troupe's protocol the benchmark uses
// (connect, sub, unsub, pub, ping; MessagePack maps in binary frames) and does, per
// publish, the least a server that writes each delivery to its socket can do: the push is
// framed once, and each subscriber gets exactly one write() of that shared frame (a socket
// whose kernel buffer is full keeps the rest in a queue flushed on EPOLLOUT). No history, no
// presence, no allocation per delivery. Its CPU per delivery is the floor below which no
// server doing one write per delivery can go; only batching several sockets' writes into
// one submission would.
//
// What it sends is what the generator's troupe dialect reads and nothing more: a push is
// {t:"msg", seq, data} (seq, the room's counter, is what the generator checks order with),
// an ack {t:"ack", id, seq}, a sub's reply {t:"subscribed", id, seq}, a connect's
// {t:"connected", client}.
//
//   troupe_floor [--port N] [--host 127.0.0.1]     (port 0 picks a free port)
#include <boost/beast/websocket/detail/hybi13.hpp>
#include <msgpack.hpp>

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

struct Room;

struct Conn {
  int fd = -1;
  bool upgraded = false;
  bool connected = false;
  bool want_out = false;
  std::string in;  // only a partial request or frame, else empty
  std::string out; // only what the kernel did not take, else empty
  std::vector<Room*> rooms;
};

struct Room {
  std::uint64_t seq = 0;
  std::vector<Conn*> subs;
};

int epfd = -1;
std::unordered_map<std::string, Room> rooms;
std::uint64_t next_client = 1;
char rbuf[1 << 16]; // one receive buffer for every socket

using Packer = msgpack::packer<msgpack::sbuffer>;

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

const msgpack::object* get(const msgpack::object& m, std::string_view key) {
  if (m.type != msgpack::type::MAP) return nullptr;
  for (std::uint32_t i = 0; i < m.via.map.size; ++i) {
    const auto& kv = m.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
      return &kv.val;
  }
  return nullptr;
}

std::string_view get_str(const msgpack::object& m, std::string_view key) {
  const msgpack::object* v = get(m, key);
  if (!v || v->type != msgpack::type::STR) return {};
  return {v->via.str.ptr, v->via.str.size};
}

void pack_id(Packer& pk, const msgpack::object* id) {
  if (id)
    pk.pack(*id);
  else
    pk.pack_nil();
}

bool valid_room(std::string_view r) {
  if (r.empty() || r.size() > 128) return false;
  for (char c : r) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' ||
          c == '.' || c == '@'))
      return false;
  }
  return true;
}

// A server frame header (FIN, binary, unmasked) for n payload bytes: 2, 4 or 10 bytes.
std::size_t frame_header(char* h, std::size_t n) {
  h[0] = static_cast<char>(0x82);
  if (n < 126) {
    h[1] = static_cast<char>(n);
    return 2;
  }
  if (n < 65536) {
    h[1] = 126;
    h[2] = static_cast<char>(n >> 8);
    h[3] = static_cast<char>(n);
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; ++i)
    h[2 + i] = static_cast<char>(static_cast<std::uint64_t>(n) >> (56 - 8 * i));
  return 10;
}

// The payload starts kMaxHeader bytes into the buffer; the header goes just before it, so a
// frame is one contiguous range without a copy.
constexpr std::size_t kMaxHeader = 10;

struct Frame {
  msgpack::sbuffer buf;
  Packer pk{buf};
  Frame() { buf.write("\0\0\0\0\0\0\0\0\0\0", kMaxHeader); }
  std::string_view done() {
    char h[kMaxHeader];
    const std::size_t n = buf.size() - kMaxHeader;
    const std::size_t hn = frame_header(h, n);
    char* start = buf.data() + kMaxHeader - hn;
    std::memcpy(start, h, hn);
    return {start, n + hn};
  }
};

void want_out(Conn& c, bool on) {
  if (c.want_out == on) return;
  c.want_out = on;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
}

// Exactly one write() when nothing is queued; nothing at all when something is (the bytes
// join the queue, which EPOLLOUT flushes).
void send_bytes(Conn& c, std::string_view b) {
  if (!c.out.empty()) {
    c.out.append(b);
    return;
  }
  ssize_t w = ::write(c.fd, b.data(), b.size());
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return; // the read side will see the close
    w = 0;
  }
  if (static_cast<std::size_t>(w) < b.size()) {
    c.out.assign(b.substr(static_cast<std::size_t>(w)));
    want_out(c, true);
  }
}

void flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t w = ::write(c.fd, c.out.data(), c.out.size());
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      std::string().swap(c.out);
      break;
    }
    c.out.erase(0, static_cast<std::size_t>(w));
  }
  std::string().swap(c.out);
  want_out(c, false);
}

// Removes x from v (order does not matter).
template <class T>
void erase_one(std::vector<T*>& v, T* x) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == x) {
      v[i] = v.back();
      v.pop_back();
      return;
    }
  }
}

void leave(Conn& c, Room* r) { erase_one(r->subs, &c); }

void close_conn(Conn* c) {
  for (Room* r : c->rooms)
    leave(*c, r);
  ::close(c->fd); // also removes it from the epoll set
  delete c;
}

// A reply's first fields: a map of `fields` entries, t and the request's id.
void reply_head(Packer& pk, std::uint32_t fields, std::string_view t, const msgpack::object* id) {
  pk.pack_map(fields);
  pack_str(pk, "t");
  pack_str(pk, t);
  pack_str(pk, "id");
  pack_id(pk, id);
}

void error(Conn& c, const msgpack::object* id, std::string_view code) {
  Frame f;
  reply_head(f.pk, 3, "error", id);
  pack_str(f.pk, "code");
  pack_str(f.pk, code);
  send_bytes(c, f.done());
}

// Returns false when the connection must close.
bool handle(Conn& c, const msgpack::object& m) {
  std::string_view t = get_str(m, "t");
  const msgpack::object* id = get(m, "id");
  if (t.empty()) {
    error(c, nullptr, "bad_request");
    return true;
  }
  Frame f;
  if (!c.connected) {
    if (t != "connect") return false;
    c.connected = true;
    f.pk.pack_map(2);
    pack_str(f.pk, "t");
    pack_str(f.pk, "connected");
    pack_str(f.pk, "client");
    pack_str(f.pk, "c" + std::to_string(next_client++));
    send_bytes(c, f.done());
    return true;
  }
  if (t == "sub") {
    std::string_view name = get_str(m, "room");
    if (!valid_room(name)) {
      error(c, id, "bad_request");
      return true;
    }
    Room* r = &rooms[std::string(name)];
    bool already = false;
    for (Room* x : c.rooms)
      already |= x == r;
    if (!already) {
      r->subs.push_back(&c);
      c.rooms.push_back(r);
    }
    reply_head(f.pk, 3, "subscribed", id);
    pack_str(f.pk, "seq");
    f.pk.pack_uint64(r->seq);
    send_bytes(c, f.done());
  } else if (t == "unsub") {
    auto it = rooms.find(std::string(get_str(m, "room")));
    if (it != rooms.end()) {
      leave(c, &it->second);
      erase_one(c.rooms, &it->second);
    }
    reply_head(f.pk, 2, "unsubscribed", id);
    send_bytes(c, f.done());
  } else if (t == "pub") {
    std::string_view name = get_str(m, "room");
    const msgpack::object* data = get(m, "data");
    if (!valid_room(name) || !data) {
      error(c, id, "bad_request");
      return true;
    }
    Room& r = rooms[std::string(name)];
    const std::uint64_t seq = ++r.seq;
    reply_head(f.pk, 3, "ack", id);
    pack_str(f.pk, "seq");
    f.pk.pack_uint64(seq);
    send_bytes(c, f.done());
    // The push: framed once, one write of it per subscriber.
    Frame push;
    push.pk.pack_map(3);
    pack_str(push.pk, "t");
    pack_str(push.pk, "msg");
    pack_str(push.pk, "seq");
    push.pk.pack_uint64(seq);
    pack_str(push.pk, "data");
    push.pk.pack(*data);
    const std::string_view frame = push.done();
    for (Conn* s : r.subs)
      send_bytes(*s, frame);
  } else if (t == "ping") {
    reply_head(f.pk, 2, "pong", id);
    send_bytes(c, f.done());
  } else {
    error(c, id, "bad_request");
  }
  return true;
}

// The HTTP upgrade: returns the bytes consumed, 0 when the request is not complete yet, or
// -1 when it is not a WebSocket upgrade.
long upgrade(Conn& c, std::string_view in) {
  const std::size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return in.size() > 8192 ? -1 : 0;
  std::string_view head = in.substr(0, end + 2);
  std::string_view key;
  for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
    const std::size_t next = head.find("\r\n", pos + 2);
    if (next == std::string_view::npos) break;
    std::string_view line = head.substr(pos + 2, next - pos - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && colon == 17 &&
        strncasecmp(line.data(), "sec-websocket-key", 17) == 0) {
      key = line.substr(colon + 1);
      while (!key.empty() && key.front() == ' ')
        key.remove_prefix(1);
      while (!key.empty() && key.back() == ' ')
        key.remove_suffix(1);
    }
    pos = next;
  }
  if (key.empty()) return -1;
  boost::beast::websocket::detail::sec_ws_accept_type accept;
  boost::beast::websocket::detail::make_sec_ws_accept(accept, key);
  std::string reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  reply.append(accept.data(), accept.size());
  reply += "\r\n\r\n";
  send_bytes(c, reply);
  c.upgraded = true;
  return static_cast<long>(end + 4);
}

// Parses whole client frames from `in` (unmasking in place); returns the bytes consumed or
// -1 to close.
long frames(Conn& c, char* in, std::size_t n) {
  std::size_t off = 0;
  while (n - off >= 2) {
    const auto* p = reinterpret_cast<unsigned char*>(in + off);
    const unsigned opcode = p[0] & 0x0f;
    const bool masked = p[1] & 0x80;
    std::uint64_t len = p[1] & 0x7f;
    std::size_t h = 2;
    if (len == 126) {
      if (n - off < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      h = 4;
    } else if (len == 127) {
      if (n - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | p[2 + i];
      h = 10;
    }
    if (!masked || len > (1u << 20) || !(p[0] & 0x80)) return -1; // clients mask; no fragments
    if (n - off < h + 4 + len) break;
    const unsigned char* mask = p + h;
    char* payload = in + off + h + 4;
    for (std::uint64_t i = 0; i < len; ++i)
      payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
    off += h + 4 + len;
    if (opcode == 0x8) return -1; // close
    if (opcode == 0x9) {          // ping → pong
      std::string pong(2, '\0');
      pong[0] = static_cast<char>(0x8a);
      pong[1] = static_cast<char>(len);
      pong.append(payload, len);
      send_bytes(c, pong);
      continue;
    }
    if (opcode != 0x2) continue; // text, pong, continuation: not part of this protocol
    std::size_t at = 0;
    try {
      while (at < len) {
        msgpack::object_handle oh = msgpack::unpack(payload, len, at);
        if (!handle(c, oh.get())) return -1;
      }
    } catch (const std::exception&) {
      error(c, nullptr, "bad_request");
    }
  }
  return static_cast<long>(off);
}

// Consumes what `in` holds; returns the bytes used or -1 to close.
long consume(Conn& c, char* in, std::size_t n) {
  std::size_t used = 0;
  if (!c.upgraded) {
    const long u = upgrade(c, std::string_view(in, n));
    if (u <= 0) return u;
    used = static_cast<std::size_t>(u);
  }
  const long f = frames(c, in + used, n - used);
  return f < 0 ? -1 : static_cast<long>(used) + f;
}

void on_readable(Conn* c) {
  for (;;) {
    const ssize_t r = ::read(c->fd, rbuf, sizeof rbuf);
    if (r == 0) return close_conn(c);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return close_conn(c);
    }
    long used;
    if (c->in.empty()) {
      used = consume(*c, rbuf, static_cast<std::size_t>(r));
      if (used < 0) return close_conn(c);
      if (static_cast<std::size_t>(used) < static_cast<std::size_t>(r))
        c->in.assign(rbuf + used, static_cast<std::size_t>(r - used));
    } else {
      c->in.append(rbuf, static_cast<std::size_t>(r));
      used = consume(*c, c->in.data(), c->in.size());
      if (used < 0) return close_conn(c);
      if (static_cast<std::size_t>(used) == c->in.size())
        std::string().swap(c->in);
      else
        c->in.erase(0, static_cast<std::size_t>(used));
    }
    if (static_cast<std::size_t>(r) < sizeof rbuf) return;
  }
}

} // namespace

int main(int argc, char** argv) {
  int port = 8080;
  std::string host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port"))
      port = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--host"))
      host = argv[i + 1];
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, [](int) { std::_Exit(0); });
  std::signal(SIGINT, [](int) { std::_Exit(0); });

  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "--host must be a loopback IPv4 address\n");
    return 2;
  }
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::perror("troupe_floor: listen");
    return 1;
  }
  socklen_t alen = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);
  std::printf("listening on %s:%u\n", host.c_str(), ntohs(addr.sin_port));
  std::fflush(stdout);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr; // the listening socket
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  epoll_event events[256];
  for (;;) {
    const int n = epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (!c) {
        for (;;) {
          const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* conn = new Conn;
          conn->fd = fd;
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.ptr = conn;
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (events[i].events & EPOLLOUT) flush(*c);
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}

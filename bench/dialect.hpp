#pragma once
// How the load generator speaks to one kind of server. A dialect turns requests into
// WebSocket message bytes and turns received messages into events; it holds no
// per-connection state, so one instance serves every connection (single-threaded).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// A presence entry as received; the views point into the frame being parsed.
struct PresenceEntry {
  std::string_view client;
  std::string_view user;
};

// What a dialect reports while parsing one received WebSocket message.
class DialectSink {
public:
  virtual ~DialectSink() = default;
  virtual void on_transport_open() {}                     // Engine.IO "open" packet
  virtual void on_transport_ping() {}                     // Engine.IO "ping": answer with pong
  virtual void on_connected(std::string_view client) = 0; // handshake done ("" if none)
  virtual void on_reply(std::uint64_t id, std::uint64_t seq) = 0; // subscribed / ack
  // A `subscribed` reply with what recovery needs (Troupe); by default just a reply. The
  // reply's `msgs` follow it, each as on_history_msg.
  virtual void on_subscribed(std::uint64_t id, std::uint64_t seq, std::string_view epoch,
                             bool recovered) {
    on_reply(id, seq);
  }
  virtual void on_history_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) {}
  virtual void on_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) = 0;
  virtual void on_error(std::uint64_t id, std::string_view code) = 0;
  virtual void on_server_disconnect(std::string_view why) = 0;
  // Presence, as the dialect's `presence` says: a `subscribed` reply's members (id = the
  // sub's id, reported before on_reply) or a pdiff (id = 0), with every entry or only how
  // many there are.
  virtual void on_presence(std::uint64_t id, std::uint64_t pseq,
                           const std::vector<PresenceEntry>& joins,
                           const std::vector<PresenceEntry>& leaves) {}
  virtual void on_presence_counts(std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                                  std::size_t leaves) {}
};

enum class PresenceParse { off, counts, entries };

// One message to send: bytes plus whether it goes in a text frame.
struct Outgoing {
  std::string bytes;
  bool text = false;
};

class Dialect {
public:
  virtual ~Dialect() = default;
  virtual std::string_view name() const = 0;
  // The HTTP request target of the WebSocket upgrade.
  virtual std::string_view target() const = 0;
  // True when the client speaks first after the upgrade (Troupe's connect); false when it
  // waits for the server's transport open packet (Engine.IO).
  virtual bool client_speaks_first() const = 0;

  virtual Outgoing connect(std::uint64_t id, std::string_view user) = 0;
  virtual Outgoing subscribe(std::uint64_t id, std::string_view room) = 0;
  virtual Outgoing publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                           std::size_t n) = 0;
  virtual Outgoing transport_pong() { return {}; }
  // With an idempotency key, and a resubscription with `since` (Troupe's recovery); a
  // dialect without them sends the plain request.
  virtual Outgoing publish_keyed(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                                 std::size_t n, std::string_view key) {
    return publish(id, room, data, n);
  }
  virtual Outgoing subscribe_since(std::uint64_t id, std::string_view room, std::uint64_t seq,
                                   std::string_view epoch) {
    return subscribe(id, room);
  }

  // Decode presence (members, pdiffs) too. Off by default: the fan-out scenarios do not
  // pay for it.
  PresenceParse presence = PresenceParse::off;

  // Parses one received WebSocket message (which may batch several maps). Returns false
  // when the bytes are not what the dialect expects.
  virtual bool parse(const char* data, std::size_t n, bool text, DialectSink& sink) = 0;
};

// "troupe" and "ws" (the node peer speaks Troupe's protocol) or "socketio".
std::unique_ptr<Dialect> make_dialect(std::string_view kind);

} // namespace bench

#pragma once
#include "dialect.hpp"

#include <msgpack.hpp>

namespace bench {

// Socket.IO 4 over Engine.IO v4's WebSocket transport, packets encoded by
// socket.io-msgpack-parser (notepack.io):
//  - Engine.IO packets are WebSocket messages: text ones carry a one-digit type
//    ("0{…}" open, "2" ping, "3" pong, "1" close); a binary message is a "message" packet
//    whose bytes are the payload, with no type prefix.
//  - Each Socket.IO packet is one MessagePack map {type, nsp, data?, id?} in one binary
//    Engine.IO message: CONNECT 0 (data: auth), EVENT 2 (data: [name, args…]), ACK 3
//    (data: [args…]), CONNECT_ERROR 4, DISCONNECT 1.
//  - The client sends CONNECT for "/" after the open packet; the server answers CONNECT
//    {sid}. The server pings every pingInterval and expects "3" back.
class SocketIoDialect final : public Dialect {
public:
  std::string_view name() const override { return "socketio"; }
  std::string_view target() const override { return "/socket.io/?EIO=4&transport=websocket"; }
  bool client_speaks_first() const override { return false; }

  Outgoing connect(std::uint64_t id, std::string_view user) override;
  Outgoing subscribe(std::uint64_t id, std::string_view room) override;
  Outgoing publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                   std::size_t n) override;
  Outgoing transport_pong() override { return {"3", true}; }
  bool parse(const char* data, std::size_t n, bool text, DialectSink& sink) override;

private:
  msgpack::zone zone_;
};

} // namespace bench

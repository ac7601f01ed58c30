#include "socketio_dialect.hpp"

#include "mp.hpp"

namespace bench {
namespace {

enum PacketType : int { kConnect = 0, kDisconnect = 1, kEvent = 2, kAck = 3, kConnectError = 4 };

// Packs the head of a packet map: {type, nsp:"/", [id], data: …}; the caller packs data.
void pack_head(mp::Packer& pk, int type, std::uint64_t id, bool with_id) {
  pk.pack_map(with_id ? 4 : 3);
  mp::pack_str(pk, "type");
  pk.pack_int(type);
  mp::pack_str(pk, "nsp");
  mp::pack_str(pk, "/");
  if (with_id) {
    mp::pack_str(pk, "id");
    pk.pack_uint64(id);
  }
  mp::pack_str(pk, "data");
}

} // namespace

Outgoing SocketIoDialect::connect(std::uint64_t, std::string_view user) {
  Outgoing out;
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pack_head(pk, kConnect, 0, false);
  pk.pack_map(1); // auth payload: the server reads socket.handshake.auth.user
  mp::pack_str(pk, "user");
  mp::pack_str(pk, user);
  return out;
}

Outgoing SocketIoDialect::subscribe(std::uint64_t id, std::string_view room) {
  Outgoing out;
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pack_head(pk, kEvent, id, true);
  pk.pack_array(2);
  mp::pack_str(pk, "sub");
  mp::pack_str(pk, room);
  return out;
}

Outgoing SocketIoDialect::publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                                  std::size_t n) {
  Outgoing out;
  out.bytes.reserve(48 + room.size() + n);
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pack_head(pk, kEvent, id, true);
  pk.pack_array(2);
  mp::pack_str(pk, "pub");
  pk.pack_map(2);
  mp::pack_str(pk, "room");
  mp::pack_str(pk, room);
  mp::pack_str(pk, "data");
  mp::pack_bin(pk, data, n);
  return out;
}

bool SocketIoDialect::parse(const char* data, std::size_t n, bool text, DialectSink& sink) {
  if (text) {
    if (n == 0) return false;
    switch (data[0]) {
    case '0':
      sink.on_transport_open();
      return true;
    case '1':
      sink.on_server_disconnect("engine.io close");
      return true;
    case '2':
      sink.on_transport_ping();
      return true;
    case '6':
      return true; // noop
    default:
      return false; // text messages: not used with the msgpack parser
    }
  }
  bool ok = true;
  try {
    std::size_t off = 0;
    msgpack::object p = msgpack::unpack(zone_, data, n, off, &mp::reference_all, nullptr);
    const msgpack::object* type = mp::get(p, "type");
    const msgpack::object* d = mp::get(p, "data");
    switch (type ? static_cast<int>(mp::as_u64(type)) : -1) {
    case kEvent: {
      if (!d || d->type != msgpack::type::ARRAY || d->via.array.size < 2) break;
      const msgpack::object& arg = d->via.array.ptr[1];
      if (mp::as_str(d->via.array.ptr[0]) != "msg") break;
      const msgpack::object* bin = mp::get(arg, "data");
      if (bin && bin->type == msgpack::type::BIN) {
        sink.on_msg(mp::as_u64(mp::get(arg, "seq")),
                    reinterpret_cast<const std::uint8_t*>(bin->via.bin.ptr), bin->via.bin.size);
      } else {
        sink.on_msg(mp::as_u64(mp::get(arg, "seq")), nullptr, 0);
      }
      break;
    }
    case kAck: {
      std::uint64_t id = mp::as_u64(mp::get(p, "id"));
      const msgpack::object* arg = d && d->type == msgpack::type::ARRAY && d->via.array.size > 0
                                       ? d->via.array.ptr
                                       : nullptr;
      std::string_view err = arg ? mp::get_str(*arg, "error") : std::string_view();
      if (!err.empty()) {
        sink.on_error(id, err);
      } else {
        sink.on_reply(id, arg ? mp::as_u64(mp::get(*arg, "seq")) : 0);
      }
      break;
    }
    case kConnect:
      sink.on_connected({});
      break;
    case kConnectError:
      sink.on_error(0, "connect_error");
      break;
    case kDisconnect:
      sink.on_server_disconnect("socket.io disconnect");
      break;
    default:
      ok = false;
    }
  } catch (const std::exception&) {
    ok = false;
  }
  zone_.clear();
  return ok;
}

} // namespace bench

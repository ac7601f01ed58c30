#include "troupe_dialect.hpp"

#include "mp.hpp"

#include <stdexcept>

namespace bench {
namespace {

// An array of presence entries; an element that is not a map yields an empty client,
// which the receiver counts as malformed. False when `arr` is not an array.
bool read_entries(const msgpack::object* arr, std::vector<PresenceEntry>& out) {
  out.clear();
  if (!arr || arr->type != msgpack::type::ARRAY) return false;
  for (std::uint32_t i = 0; i < arr->via.array.size; ++i) {
    const msgpack::object& e = arr->via.array.ptr[i];
    out.push_back({mp::get_str(e, "client"), mp::get_str(e, "user")});
  }
  return true;
}

}  // namespace

Outgoing TroupeDialect::connect(std::uint64_t id, std::string_view user) {
  Outgoing out;
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pk.pack_map(3);
  mp::pack_str(pk, "t");
  mp::pack_str(pk, "connect");
  mp::pack_str(pk, "id");
  pk.pack_uint64(id);
  mp::pack_str(pk, "user");
  mp::pack_str(pk, user);
  return out;
}

Outgoing TroupeDialect::subscribe(std::uint64_t id, std::string_view room) {
  Outgoing out;
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pk.pack_map(3);
  mp::pack_str(pk, "t");
  mp::pack_str(pk, "sub");
  mp::pack_str(pk, "id");
  pk.pack_uint64(id);
  mp::pack_str(pk, "room");
  mp::pack_str(pk, room);
  return out;
}

Outgoing TroupeDialect::publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                                std::size_t n) {
  Outgoing out;
  out.bytes.reserve(32 + room.size() + n);
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pk.pack_map(4);
  mp::pack_str(pk, "t");
  mp::pack_str(pk, "pub");
  mp::pack_str(pk, "id");
  pk.pack_uint64(id);
  mp::pack_str(pk, "room");
  mp::pack_str(pk, room);
  mp::pack_str(pk, "data");
  mp::pack_bin(pk, data, n);
  return out;
}

bool TroupeDialect::parse(const char* data, std::size_t n, bool text, DialectSink& sink) {
  if (text) return false;
  std::size_t off = 0;
  bool ok = true;
  try {
    while (off < n) {
      msgpack::object m = msgpack::unpack(zone_, data, n, off, &mp::reference_all, nullptr);
      std::string_view t = mp::get_str(m, "t");
      if (t == "msg") {
        const msgpack::object* d = mp::get(m, "data");
        if (d && d->type == msgpack::type::BIN) {
          sink.on_msg(mp::as_u64(mp::get(m, "seq")),
                      reinterpret_cast<const std::uint8_t*>(d->via.bin.ptr), d->via.bin.size);
        } else {
          sink.on_msg(mp::as_u64(mp::get(m, "seq")), nullptr, 0);
        }
      } else if (t == "ack" || t == "subscribed") {
        const std::uint64_t id = mp::as_u64(mp::get(m, "id"));
        if (presence && t == "subscribed") {
          if (!read_entries(mp::get(m, "members"), joins_)) throw std::runtime_error("members");
          leaves_.clear();
          sink.on_presence(id, mp::as_u64(mp::get(m, "pseq")), joins_, leaves_);
        }
        sink.on_reply(id, mp::as_u64(mp::get(m, "seq")));
      } else if (t == "pdiff") {
        if (presence) {
          if (!read_entries(mp::get(m, "joins"), joins_) ||
              !read_entries(mp::get(m, "leaves"), leaves_)) {
            throw std::runtime_error("pdiff");
          }
          sink.on_presence(0, mp::as_u64(mp::get(m, "pseq")), joins_, leaves_);
        }
      } else if (t == "connected") {
        sink.on_connected(mp::get_str(m, "client"));
      } else if (t == "error") {
        sink.on_error(mp::as_u64(mp::get(m, "id")), mp::get_str(m, "code"));
      } else if (t == "disconnect") {
        sink.on_server_disconnect(mp::get_str(m, "reason"));
      }
      // Anything else (typing, pong…) is not part of the measurement.
    }
  } catch (const std::exception&) {
    ok = false;
  }
  zone_.clear();
  return ok;
}

}  // namespace bench

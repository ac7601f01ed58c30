#include "troupe_dialect.hpp"

#include "mp.hpp"

#include <stdexcept>

namespace bench {
namespace {

// An array of presence entries; an element that is not a map, or lacks a string client,
// yields an empty client, which the receiver counts as malformed.
bool read_entries(mp::Reader& r, std::vector<PresenceEntry>& out) {
  out.clear();
  std::uint32_t count;
  if (!r.array(count)) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    PresenceEntry e;
    std::uint32_t fields;
    if (!r.map(fields)) {
      if (!r.skip()) return false;
      out.push_back(e);
      continue;
    }
    for (std::uint32_t f = 0; f < fields; ++f) {
      std::string_view key;
      if (!r.str(key)) return false;
      std::string_view* into = key == "client" ? &e.client : key == "user" ? &e.user : nullptr;
      if (!into || !r.str(*into)) {
        if (into) *into = {};
        if (!r.skip()) return false;
      }
    }
    out.push_back(e);
  }
  return true;
}

} // namespace

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

Outgoing TroupeDialect::subscribe_since(std::uint64_t id, std::string_view room, std::uint64_t seq,
                                        std::string_view epoch) {
  Outgoing out;
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pk.pack_map(4);
  mp::pack_str(pk, "t");
  mp::pack_str(pk, "sub");
  mp::pack_str(pk, "id");
  pk.pack_uint64(id);
  mp::pack_str(pk, "room");
  mp::pack_str(pk, room);
  mp::pack_str(pk, "since");
  pk.pack_map(2);
  mp::pack_str(pk, "seq");
  pk.pack_uint64(seq);
  mp::pack_str(pk, "epoch");
  mp::pack_str(pk, epoch);
  return out;
}

Outgoing TroupeDialect::publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                                std::size_t n) {
  return publish_keyed(id, room, data, n, {});
}

Outgoing TroupeDialect::publish_keyed(std::uint64_t id, std::string_view room,
                                      const std::uint8_t* data, std::size_t n,
                                      std::string_view key) {
  Outgoing out;
  out.bytes.reserve(40 + room.size() + n + key.size());
  mp::StringSink sink{out.bytes};
  mp::Packer pk(sink);
  pk.pack_map(key.empty() ? 4 : 5);
  if (!key.empty()) {
    mp::pack_str(pk, "key");
    mp::pack_str(pk, key);
  }
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

std::size_t TroupeDialect::parse_presence(const char* data, std::size_t n, DialectSink& sink) {
  mp::Reader r(data, n);
  std::uint32_t fields;
  if (!r.map(fields)) return 0;
  std::string_view t;
  std::uint64_t id = 0, seq = 0, pseq = 0;
  // The entry arrays: decoded (or counted) where they stand once `t` is known, which the
  // engine puts first; else found again after the map.
  struct Entries {
    const char* at = nullptr;
    bool done = false;
    std::size_t count = 0;
  } members, joins, leaves;
  const bool full = presence == PresenceParse::entries;
  auto take = [&](mp::Reader& in, Entries& e, std::vector<PresenceEntry>& out) {
    if (full) {
      if (!read_entries(in, out)) return false;
      e.count = out.size();
      return e.done = true;
    }
    std::uint32_t count;
    if (!in.array(count)) return false;
    for (std::uint32_t i = 0; i < count; ++i) {
      if (!in.skip()) return false;
    }
    e.count = count;
    return e.done = true;
  };
  for (std::uint32_t f = 0; f < fields; ++f) {
    std::string_view key;
    if (!r.str(key)) return 0;
    const char* value = r.pos();
    bool read = false;
    if (key == "t") {
      read = r.str(t);
      if (read && t != "subscribed" && t != "pdiff") return 0;
    } else if (key == "id") {
      read = r.uint(id);
    } else if (key == "seq") {
      read = r.uint(seq);
    } else if (key == "pseq") {
      read = r.uint(pseq);
    } else if (key == "members") {
      members.at = value;
      read = t == "subscribed" && take(r, members, joins_);
    } else if (key == "joins") {
      joins.at = value;
      read = t == "pdiff" && take(r, joins, joins_);
    } else if (key == "leaves") {
      leaves.at = value;
      read = t == "pdiff" && take(r, leaves, leaves_);
    }
    if (!read) {
      r = mp::Reader(value, static_cast<std::size_t>(data + n - value));
      if (!r.skip()) return 0;
    }
  }
  const char* end = r.pos();
  auto have = [&](Entries& e, std::vector<PresenceEntry>& out) {
    if (e.done) return true;
    if (!e.at) return false;
    mp::Reader again(e.at, static_cast<std::size_t>(end - e.at));
    return take(again, e, out);
  };
  if (t == "subscribed") {
    if (!have(members, joins_)) throw std::runtime_error("members");
    leaves_.clear();
    if (full)
      sink.on_presence(id, pseq, joins_, leaves_);
    else
      sink.on_presence_counts(id, pseq, members.count, 0);
    sink.on_reply(id, seq);
  } else if (t == "pdiff") {
    if (!have(joins, joins_) || !have(leaves, leaves_)) throw std::runtime_error("pdiff");
    if (full)
      sink.on_presence(0, pseq, joins_, leaves_);
    else
      sink.on_presence_counts(0, pseq, joins.count, leaves.count);
  } else {
    return 0; // not presence: the general path decodes it
  }
  return static_cast<std::size_t>(end - data);
}

bool TroupeDialect::parse(const char* data, std::size_t n, bool text, DialectSink& sink) {
  if (text) return false;
  std::size_t off = 0;
  bool ok = true;
  try {
    while (off < n) {
      if (presence != PresenceParse::off) {
        if (std::size_t used = parse_presence(data + off, n - off, sink)) {
          off += used;
          continue;
        }
      }
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
      } else if (t == "subscribed") {
        const msgpack::object* rec = mp::get(m, "recovered");
        sink.on_subscribed(mp::as_u64(mp::get(m, "id")), mp::as_u64(mp::get(m, "seq")),
                           mp::get_str(m, "epoch"),
                           rec && rec->type == msgpack::type::BOOLEAN && rec->via.boolean);
        const msgpack::object* msgs = mp::get(m, "msgs");
        if (msgs && msgs->type == msgpack::type::ARRAY) {
          for (std::uint32_t i = 0; i < msgs->via.array.size; ++i) {
            const msgpack::object& e = msgs->via.array.ptr[i];
            const msgpack::object* d = mp::get(e, "data");
            const bool bin = d && d->type == msgpack::type::BIN;
            sink.on_history_msg(mp::as_u64(mp::get(e, "seq")),
                                bin ? reinterpret_cast<const std::uint8_t*>(d->via.bin.ptr)
                                    : nullptr,
                                bin ? d->via.bin.size : 0);
          }
        }
      } else if (t == "ack") {
        sink.on_reply(mp::as_u64(mp::get(m, "id")), mp::as_u64(mp::get(m, "seq")));
      } else if (t == "connected") {
        sink.on_connected(mp::get_str(m, "client"));
      } else if (t == "error") {
        sink.on_error(mp::as_u64(mp::get(m, "id")), mp::get_str(m, "code"));
      } else if (t == "disconnect") {
        sink.on_server_disconnect(mp::get_str(m, "reason"));
      }
      // Anything else (pdiff without presence, typing, pong…) is not measured.
    }
  } catch (const std::exception&) {
    ok = false;
  }
  zone_.clear();
  return ok;
}

} // namespace bench

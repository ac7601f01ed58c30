#include "protocol/codec.hpp"

#include <msgpack.hpp>

#include "protocol/operation_codec.hpp"
#include "protocol/string_sink.hpp"

#include <array>

namespace troupe::protocol {

const char* to_string(error_code code) noexcept {
  switch (code) {
  case error_code::bad_request:
    return "bad_request";
  case error_code::unauthorized:
    return "unauthorized";
  case error_code::forbidden:
    return "forbidden";
  case error_code::not_found:
    return "not_found";
  case error_code::rate_limited:
    return "rate_limited";
  case error_code::too_large:
    return "too_large";
  case error_code::not_subscribed:
    return "not_subscribed";
  case error_code::conflict:
    return "conflict";
  case error_code::unavailable:
    return "unavailable";
  case error_code::internal:
    return "internal";
  }
  return "internal";
}

namespace {
/// The bytes a room name may hold, as a table: every `op` of a keystroke names its room, and
/// the chain of comparisons per character was a few percent of the engine's time.
constexpr std::array<bool, 256> room_name_bytes = [] {
  std::array<bool, 256> ok{};
  for (int c = 0; c < 256; ++c)
    ok[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' ||
                                      c == '.' || c == '@';
  return ok;
}();
} // namespace

bool valid_room_name(std::string_view room) noexcept {
  if (room.empty() || room.size() > 128) return false;
  bool ok = true;
  for (unsigned char c : room)
    ok &= room_name_bytes[c];
  return ok;
}

namespace {

constexpr std::size_t max_key_size = 256;  // idempotency keys
constexpr std::size_t max_user_size = 128; // user ids and display names from `connect`
constexpr std::size_t max_token_size = 8192;

/// Thrown while reading one map; becomes that map's decode_error.
struct invalid {
  error_code code;
  std::string reason;
};

[[noreturn]] void fail(std::string reason, error_code code = error_code::bad_request) {
  throw invalid{code, std::move(reason)};
}

/// Read access to one request map by key.
class fields {
public:
  explicit fields(const msgpack::object_map& map) : map_(map) {}

  const msgpack::object* find(std::string_view key) const {
    for (const auto& kv : span()) {
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
        return &kv.val;
    }
    return nullptr;
  }

  const msgpack::object& required(std::string_view key) const {
    if (auto* value = find(key)) return *value;
    fail("missing '" + std::string(key) + "'");
  }

  std::string string(std::string_view key, std::size_t max_size) const {
    return as_string(required(key), key, max_size);
  }

  std::optional<std::string> optional_string(std::string_view key, std::size_t max_size) const {
    auto* value = find(key);
    if (!value || value->type == msgpack::type::NIL) return std::nullopt;
    return as_string(*value, key, max_size);
  }

  std::uint64_t unsigned_int(std::string_view key) const { return as_unsigned(required(key), key); }

  std::string room() const {
    auto room = string("room", 128);
    if (!valid_room_name(room)) fail("'room' must be 1..128 bytes of A-Z a-z 0-9 _ - : . @");
    return room;
  }

  static std::string as_string(const msgpack::object& value, std::string_view key,
                               std::size_t max_size) {
    if (value.type != msgpack::type::STR) fail("'" + std::string(key) + "' must be a string");
    if (value.via.str.size > max_size)
      fail("'" + std::string(key) + "' is longer than " + std::to_string(max_size) + " bytes");
    return std::string(value.via.str.ptr, value.via.str.size);
  }

  static std::uint64_t as_unsigned(const msgpack::object& value, std::string_view key) {
    if (value.type != msgpack::type::POSITIVE_INTEGER)
      fail("'" + std::string(key) + "' must be a non-negative integer");
    return value.via.u64;
  }

private:
  std::span<const msgpack::object_kv> span() const { return {map_.ptr, map_.size}; }
  const msgpack::object_map& map_;
};

packed_value pack(const msgpack::object& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return packed_value(buffer.data(), buffer.size());
}

request_id read_id(const fields& map) {
  auto* value = map.find("id");
  if (!value) return 0;
  if (value->type != msgpack::type::POSITIVE_INTEGER || value->via.u64 == 0) return 0;
  return value->via.u64;
}

log_position read_log_position(const msgpack::object& value) {
  if (value.type != msgpack::type::MAP) fail("'since' must be a map {seq, epoch}");
  fields since(value.via.map);
  return {since.unsigned_int("seq"), since.string("epoch", 64)};
}

doc_position read_doc_position(const msgpack::object& value) {
  if (value.type != msgpack::type::MAP) fail("'since' must be a map {rev, epoch}");
  fields since(value.via.map);
  return {since.unsigned_int("rev"), since.string("epoch", 64)};
}

std::vector<op_component> read_operation(const msgpack::object& value) {
  // Components only: the document actor parses them (UTF-8, spans) with ot::parse.
  std::vector<op_component> op;
  if (auto why = unpack_components(value, op); !why.empty()) fail("'op': " + why);
  return op;
}

request read_request(std::string_view type, request_id id, const fields& map,
                     const decode_limits& limits) {
  // Every request but `typing` is answered, so it must carry an id to answer to.
  auto require_id = [&] {
    if (id == 0) fail("missing or invalid 'id' (a positive integer)");
    return id;
  };
  if (type == "pub") {
    pub_request pub{require_id(), map.room(), {}, map.optional_string("key", max_key_size)};
    pub.data = pack(map.required("data"));
    if (pub.data.size() > limits.max_data)
      fail("'data' is larger than " + std::to_string(limits.max_data) + " bytes",
           error_code::too_large);
    return pub;
  }
  if (type == "sub") {
    sub_request sub{require_id(), map.room(), std::nullopt};
    if (auto* since = map.find("since"); since && since->type != msgpack::type::NIL)
      sub.since = read_log_position(*since);
    return sub;
  }
  if (type == "unsub") return unsub_request{require_id(), map.room()};
  if (type == "history") {
    history_request history{require_id(), map.room(), map.unsigned_int("since"), max_history_limit};
    if (auto* limit = map.find("limit"); limit && limit->type != msgpack::type::NIL) {
      auto value = fields::as_unsigned(*limit, "limit");
      if (value == 0) fail("'limit' must be positive");
      history.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(value, max_history_limit));
    }
    return history;
  }
  if (type == "ping") return ping_request{require_id()};
  if (type == "connect") {
    return connect_request{require_id(), map.optional_string("token", max_token_size),
                           map.optional_string("user", max_user_size),
                           map.optional_string("name", max_user_size)};
  }
  if (type == "presence") return presence_request{require_id(), map.room()};
  if (type == "pset") {
    pset_request pset{require_id(), map.room(), {}};
    const auto& state = map.required("state");
    if (state.type != msgpack::type::MAP) fail("'state' must be a map");
    pset.state = pack(state);
    if (pset.state.size() > limits.max_state)
      fail("'state' is larger than " + std::to_string(limits.max_state) + " bytes",
           error_code::too_large);
    return pset;
  }
  if (type == "typing") {
    const auto& on = map.required("on");
    if (on.type != msgpack::type::BOOLEAN) fail("'on' must be a boolean");
    return typing_request{map.room(), on.via.boolean};
  }
  if (type == "open") {
    open_request open{require_id(), map.room(), std::nullopt};
    if (auto* since = map.find("since"); since && since->type != msgpack::type::NIL)
      open.since = read_doc_position(*since);
    return open;
  }
  if (type == "op") {
    return op_request{require_id(), map.room(), map.unsigned_int("rev"),
                      read_operation(map.required("op")), map.string("key", max_key_size)};
  }
  if (type == "close") return close_request{require_id(), map.room()};
  if (type == "rpc") {
    rpc_request rpc{require_id(), map.string("method", 64), {}};
    if (!valid_room_name(rpc.method)) fail("'method' must be 1..64 bytes of A-Z a-z 0-9 _ - : . @");
    if (auto* data = map.find("data"); data && data->type != msgpack::type::NIL) {
      rpc.data = pack(*data);
      if (rpc.data.size() > limits.max_data)
        fail("'data' is larger than " + std::to_string(limits.max_data) + " bytes",
             error_code::too_large);
    }
    return rpc;
  }
  fail("unknown type '" + std::string(type.substr(0, 32)) + "'");
}

decoded read_map(const msgpack::object& object, const decode_limits& limits) {
  if (object.type != msgpack::type::MAP)
    return decode_error{0, error_code::bad_request, "a message must be a map"};
  fields map(object.via.map);
  const request_id id = read_id(map);
  try {
    auto* type = map.find("t");
    if (!type || type->type != msgpack::type::STR) fail("missing 't' (a string)");
    return read_request(std::string_view(type->via.str.ptr, type->via.str.size), id, map, limits);
  } catch (const invalid& error) {
    return decode_error{id, error.code, error.reason};
  }
}

// Strings and binaries point into the frame instead of being copied: the frame outlives
// the decoded object tree.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

} // namespace

void decode_frame(std::string_view frame, const decode_limits& limits, std::vector<decoded>& out) {
  // Every element and every byte of a string needs at least one byte of the frame, so
  // these limits refuse a declared size that could make the decoder allocate more than
  // the frame justifies.
  const std::size_t n = frame.size();
  const msgpack::unpack_limit unpack_limits(n, n / 2, n, n, n, limits.max_depth);
  // One zone per thread, emptied after each map (read_map copies what it keeps): an
  // object_handle per map allocated and freed a zone of 8 KiB each time, for a map of a few
  // dozen bytes (an `op` of one keystroke).
  thread_local msgpack::zone zone;
  struct emptied {
    ~emptied() { zone.clear(); }
  };
  std::size_t offset = 0;
  while (offset < n) {
    try {
      const emptied after;
      const msgpack::object map = msgpack::unpack(zone, frame.data(), n, offset,
                                                  reference_everything, nullptr, unpack_limits);
      out.push_back(read_map(map, limits));
    } catch (const msgpack::depth_size_overflow&) {
      out.push_back(decode_error{0, error_code::bad_request, "nested too deeply"});
      return;
    } catch (const std::exception&) {
      // msgpack's parse_error, insufficient_bytes, size_overflow, type errors: the rest
      // of the frame cannot be framed into maps.
      out.push_back(decode_error{0, error_code::bad_request, "not valid MessagePack"});
      return;
    }
  }
}

// ---- encoding ----------------------------------------------------------------------------

namespace {

using packer = msgpack::packer<frame_builder>;

template <class Packer>
void put(Packer& pk, std::string_view text) {
  pk.pack_str(static_cast<std::uint32_t>(text.size()));
  pk.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

/// Starts a map of `size` pairs whose first pair is `t`.
template <class Packer>
void begin(Packer& pk, std::uint32_t size, std::string_view type) {
  pk.pack_map(size);
  put(pk, "t");
  put(pk, type);
}

/// Starts a reply to request `id` about `room`: a map of `size` pairs with t, id, room.
template <class Packer>
void begin_reply(Packer& pk, std::uint32_t size, std::string_view type, request_id id,
                 std::string_view room) {
  begin(pk, size, type);
  put(pk, "id");
  pk.pack(id);
  put(pk, "room");
  put(pk, room);
}

void put_messages(frame_builder& out, packer& pk, const std::vector<std::string_view>& msgs) {
  pk.pack_array(static_cast<std::uint32_t>(msgs.size()));
  for (auto msg : msgs)
    out.write(msg);
}

} // namespace

void encode_connected(frame_builder& out, request_id id, std::string_view client,
                      std::string_view user, std::uint32_t ping_seconds) {
  packer pk(out);
  begin(pk, 5, "connected");
  put(pk, "id");
  pk.pack(id);
  put(pk, "client");
  put(pk, client);
  put(pk, "user");
  put(pk, user);
  put(pk, "ping");
  pk.pack(ping_seconds);
}

std::string encode_array(const std::vector<std::string_view>& items) {
  frame_builder out;
  packer pk(out);
  put_messages(out, pk, items);
  return std::string(out.finish()->payload());
}

namespace {

template <class Packer>
void put_op_fields(Packer& pk, const op_item& item) {
  put(pk, "rev");
  pk.pack_uint64(item.rev);
  put(pk, "op");
  pack_operation(pk, *item.op);
  put(pk, "user");
  put(pk, item.user);
  put(pk, "key");
  put(pk, item.key);
}

} // namespace

std::string encode_subscribed_head(request_id id, std::string_view room, std::uint64_t seq,
                                   std::string_view epoch, bool recovered, std::string_view msgs) {
  string_sink sink;
  string_packer pk(sink);
  begin_reply(pk, 9, "subscribed", id, room);
  put(pk, "seq");
  pk.pack(seq);
  put(pk, "epoch");
  put(pk, epoch);
  put(pk, "recovered");
  pk.pack(recovered);
  put(pk, "msgs");
  sink.write(msgs.data(), msgs.size());
  return std::move(sink.bytes);
}

std::string encode_opened_head(request_id id, std::string_view room, std::uint64_t rev,
                               std::string_view epoch, std::string_view text) {
  string_sink sink;
  sink.bytes.reserve(text.size() + 96);
  string_packer pk(sink);
  begin_reply(pk, 8, "opened", id, room);
  put(pk, "rev");
  pk.pack(rev);
  put(pk, "epoch");
  put(pk, epoch);
  put(pk, "text");
  put(pk, text);
  return std::move(sink.bytes);
}

std::string encode_opened_recovered_head(request_id id, std::string_view room, std::uint64_t rev,
                                         std::string_view epoch, std::string_view ops) {
  string_sink sink;
  string_packer pk(sink);
  begin_reply(pk, 9, "opened", id, room);
  put(pk, "rev");
  pk.pack(rev);
  put(pk, "epoch");
  put(pk, epoch);
  put(pk, "ops");
  sink.write(ops.data(), ops.size());
  put(pk, "recovered");
  pk.pack(true);
  return std::move(sink.bytes);
}

void encode_members_tail(frame_builder& out, std::uint64_t pseq, std::string_view members) {
  packer pk(out);
  put(pk, "pseq");
  pk.pack(pseq);
  put(pk, "members");
  out.write(members);
}

std::string encode_op_items(const std::vector<op_item>& items) {
  string_sink sink;
  string_packer pk(sink);
  pk.pack_array(static_cast<std::uint32_t>(items.size()));
  for (const auto& item : items) {
    pk.pack_map(4);
    put_op_fields(pk, item);
  }
  return std::move(sink.bytes);
}

void encode_op(frame_builder& out, std::string_view room, const op_item& item) {
  packer pk(out);
  begin(pk, 6, "op");
  put(pk, "room");
  put(pk, room);
  put_op_fields(pk, item);
}

void encode_doc_ack(frame_builder& out, request_id id, std::string_view room, std::uint64_t rev) {
  packer pk(out);
  begin_reply(pk, 4, "ack", id, room);
  put(pk, "rev");
  pk.pack(rev);
}

void encode_closed(frame_builder& out, request_id id, std::string_view room) {
  packer pk(out);
  begin_reply(pk, 3, "closed", id, room);
}

void encode_pdiff(frame_builder& out, std::string_view room, std::uint64_t pseq,
                  const std::vector<std::string_view>& joins,
                  const std::vector<std::string>& leaves) {
  packer pk(out);
  begin(pk, 5, "pdiff");
  put(pk, "room");
  put(pk, room);
  put(pk, "pseq");
  pk.pack(pseq);
  put(pk, "joins");
  pk.pack_array(static_cast<std::uint32_t>(joins.size()));
  for (auto entry : joins)
    out.write(entry);
  put(pk, "leaves");
  pk.pack_array(static_cast<std::uint32_t>(leaves.size()));
  for (const auto& entry : leaves)
    out.write(entry);
}

void encode_presence(frame_builder& out, request_id id, std::string_view room, std::uint64_t pseq,
                     std::string_view members) {
  packer pk(out);
  begin_reply(pk, 5, "presence", id, room);
  put(pk, "pseq");
  pk.pack(pseq);
  put(pk, "members");
  out.write(members);
}

void encode_typing(frame_builder& out, std::string_view room, std::string_view user,
                   std::string_view client, bool on) {
  packer pk(out);
  begin(pk, 5, "typing");
  put(pk, "room");
  put(pk, room);
  put(pk, "user");
  put(pk, user);
  put(pk, "client");
  put(pk, client);
  put(pk, "on");
  pk.pack(on);
}

void encode_unsubscribed(frame_builder& out, request_id id, std::string_view room) {
  packer pk(out);
  begin_reply(pk, 3, "unsubscribed", id, room);
}

void encode_ack(frame_builder& out, request_id id, std::string_view room, std::uint64_t seq) {
  packer pk(out);
  begin_reply(pk, 4, "ack", id, room);
  put(pk, "seq");
  pk.pack(seq);
}

void encode_msg(frame_builder& out, std::string_view room, std::uint64_t seq, std::string_view user,
                std::string_view data, std::uint64_t ts_ms, std::string_view key) {
  packer pk(out);
  begin(pk, key.empty() ? 6 : 7, "msg");
  put(pk, "room");
  put(pk, room);
  put(pk, "seq");
  pk.pack(seq);
  put(pk, "user");
  put(pk, user);
  put(pk, "data");
  out.write(data);
  put(pk, "ts");
  pk.pack(ts_ms);
  if (!key.empty()) {
    put(pk, "key");
    put(pk, key);
  }
}

void encode_history(frame_builder& out, request_id id, std::string_view room, std::uint64_t seq,
                    std::string_view epoch, const std::vector<std::string_view>& msgs) {
  packer pk(out);
  begin_reply(pk, 6, "history", id, room);
  put(pk, "seq");
  pk.pack(seq);
  put(pk, "epoch");
  put(pk, epoch);
  put(pk, "msgs");
  put_messages(out, pk, msgs);
}

void encode_pong(frame_builder& out, request_id id) {
  packer pk(out);
  begin(pk, 2, "pong");
  put(pk, "id");
  pk.pack(id);
}

void encode_result(frame_builder& out, request_id id, std::string_view data) {
  packer pk(out);
  begin(pk, 3, "result");
  put(pk, "id");
  pk.pack(id);
  put(pk, "data");
  if (data.empty())
    pk.pack_nil();
  else
    out.write(data);
}

void encode_ok(frame_builder& out, request_id id) {
  packer pk(out);
  begin(pk, 2, "ok");
  put(pk, "id");
  pk.pack(id);
}

void encode_error(frame_builder& out, request_id id, error_code code, std::string_view reason) {
  packer pk(out);
  begin(pk, id ? 4 : 3, "error");
  if (id) {
    put(pk, "id");
    pk.pack(id);
  }
  put(pk, "code");
  put(pk, to_string(code));
  put(pk, "reason");
  put(pk, reason);
}

void encode_disconnect(frame_builder& out, std::uint16_t code, std::string_view reason,
                       bool reconnect) {
  packer pk(out);
  begin(pk, 4, "disconnect");
  put(pk, "code");
  pk.pack(code);
  put(pk, "reason");
  put(pk, reason);
  put(pk, "reconnect");
  pk.pack(reconnect);
}

} // namespace troupe::protocol

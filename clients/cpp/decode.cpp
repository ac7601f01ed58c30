#include "clients/cpp/decode.hpp"

#include "clients/cpp/map_view.hpp"
#include "protocol/operation_codec.hpp"

namespace troupe::client {

bool split_frame(std::string_view bytes, std::vector<reply>& out) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    try {
      auto h = std::make_shared<msgpack::object_handle>(
          msgpack::unpack(bytes.data(), bytes.size(), off));
      out.emplace_back(std::move(h));
    } catch (const std::exception&) {
      return false;
    }
  }
  return true;
}

std::optional<message> parse_message(const reply& owner, const msgpack::object& obj) {
  map_view m(obj);
  auto room = m.str("room");
  auto seq = m.u64("seq");
  if (!room || !seq) return std::nullopt;
  message msg;
  msg.room = std::string(*room);
  msg.seq = *seq;
  if (auto u = m.id_string("user")) msg.user = std::move(*u);
  if (const auto* d = m.get("data")) msg.data = value(owner.handle(), *d);
  msg.ts = m.i64("ts").value_or(0);
  if (auto k = m.str("key")) msg.key = std::string(*k);
  return msg;
}

std::optional<std::vector<message>> parse_messages(const reply& owner, std::string_view key,
                                                   std::string_view room) {
  std::vector<message> out;
  const auto* v = owner.map().get(key);
  if (!v) return out; // absent: none
  if (v->type != msgpack::type::ARRAY) return std::nullopt;
  out.reserve(v->via.array.size);
  for (std::uint32_t i = 0; i < v->via.array.size; ++i) {
    const auto& item = v->via.array.ptr[i];
    map_view im(item);
    if (!im.has("room")) { // tolerate items without their room: it is the reply's room
      auto seq = im.u64("seq");
      if (!seq) return std::nullopt;
      message msg;
      msg.room = std::string(room);
      msg.seq = *seq;
      if (auto u = im.id_string("user")) msg.user = std::move(*u);
      if (const auto* d = im.get("data")) msg.data = value(owner.handle(), *d);
      msg.ts = im.i64("ts").value_or(0);
      if (auto k = im.str("key")) msg.key = std::string(*k);
      out.push_back(std::move(msg));
      continue;
    }
    auto msg = parse_message(owner, item);
    if (!msg) return std::nullopt;
    out.push_back(std::move(*msg));
  }
  return out;
}

std::optional<history_reply> parse_history(const reply& r) {
  auto m = r.map();
  auto room = m.str("room");
  auto seq = m.u64("seq");
  auto epoch = m.id_string("epoch");
  if (!room || !seq || !epoch) return std::nullopt;
  history_reply h;
  h.room = std::string(*room);
  h.seq = *seq;
  h.epoch = std::move(*epoch);
  auto msgs = parse_messages(r, "msgs", h.room);
  if (!msgs) return std::nullopt;
  h.msgs = std::move(*msgs);
  return h;
}

std::optional<subscribed_event> parse_subscribed(const reply& r) {
  // room, seq, epoch and msgs as in a `history` reply
  auto h = parse_history(r);
  if (!h) return std::nullopt;
  auto m = r.map();
  subscribed_event ev;
  ev.room = std::move(h->room);
  ev.seq = h->seq;
  ev.epoch = std::move(h->epoch);
  ev.msgs = std::move(h->msgs);
  ev.recovered = m.boolean("recovered").value_or(false);
  ev.pseq = m.u64("pseq").value_or(0);
  ev.members = r.field("members");
  return ev;
}

std::optional<ack> parse_ack(const reply& r) {
  auto m = r.map();
  auto seq = m.u64("seq");
  if (!seq) return std::nullopt;
  return ack{std::string(m.str("room").value_or("")), *seq};
}

std::optional<connected_info> parse_connected(const reply& r) {
  auto m = r.map();
  connected_info info;
  info.client = m.id_string("client").value_or("");
  info.user = m.id_string("user").value_or("");
  info.ping = std::chrono::seconds(m.i64("ping").value_or(0));
  return info;
}

error parse_error(const reply& r) {
  auto m = r.map();
  return error{std::string(m.str("code").value_or("internal")),
               std::string(m.str("reason").value_or(""))};
}

// `{rev, op, user, key}`: a push or an item of a recovered `opened`.
std::optional<doc_op> parse_doc_op(const msgpack::object& o) {
  map_view m(o);
  if (!m.is_map()) return std::nullopt;
  auto rev = m.u64("rev");
  const auto* op = m.get("op");
  if (!rev || !op) return std::nullopt;
  auto parsed = protocol::unpack_operation(*op);
  if (!parsed.op) return std::nullopt;
  doc_op d;
  d.rev = *rev;
  d.op = std::move(*parsed.op);
  d.user = m.id_string("user").value_or("");
  d.key = std::string(m.str("key").value_or(""));
  return d;
}

} // namespace troupe::client

#include "clients/cpp/decode.hpp"

namespace troupe::client {

bool split_frame(std::string_view bytes, std::vector<Reply>& out) {
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

std::optional<Message> parse_message(const Reply& owner, const msgpack::object& obj) {
  MapView m(obj);
  auto room = m.str("room");
  auto seq = m.u64("seq");
  if (!room || !seq) return std::nullopt;
  Message msg;
  msg.room = std::string(*room);
  msg.seq = *seq;
  if (auto u = m.id_string("user")) msg.user = std::move(*u);
  if (const auto* d = m.get("data")) msg.data = Value(owner.handle(), *d);
  msg.ts = m.i64("ts").value_or(0);
  if (auto k = m.str("key")) msg.key = std::string(*k);
  return msg;
}

std::optional<std::vector<Message>> parse_messages(const Reply& owner, std::string_view key,
                                                   std::string_view room) {
  std::vector<Message> out;
  const auto* v = owner.map().get(key);
  if (!v) return out;  // absent: none
  if (v->type != msgpack::type::ARRAY) return std::nullopt;
  out.reserve(v->via.array.size);
  for (std::uint32_t i = 0; i < v->via.array.size; ++i) {
    const auto& item = v->via.array.ptr[i];
    MapView im(item);
    if (!im.has("room")) {  // tolerate items without their room: it is the reply's room
      auto seq = im.u64("seq");
      if (!seq) return std::nullopt;
      Message msg;
      msg.room = std::string(room);
      msg.seq = *seq;
      if (auto u = im.id_string("user")) msg.user = std::move(*u);
      if (const auto* d = im.get("data")) msg.data = Value(owner.handle(), *d);
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

std::optional<SubscribedEvent> parse_subscribed(const Reply& r) {
  auto m = r.map();
  auto room = m.str("room");
  auto seq = m.u64("seq");
  auto epoch = m.id_string("epoch");
  if (!room || !seq || !epoch) return std::nullopt;
  SubscribedEvent ev;
  ev.room = std::string(*room);
  ev.seq = *seq;
  ev.epoch = std::move(*epoch);
  ev.recovered = m.boolean("recovered").value_or(false);
  auto msgs = parse_messages(r, "msgs", ev.room);
  if (!msgs) return std::nullopt;
  ev.msgs = std::move(*msgs);
  ev.pseq = m.u64("pseq").value_or(0);
  ev.members = r.field("members");
  return ev;
}

std::optional<HistoryReply> parse_history(const Reply& r) {
  auto m = r.map();
  auto room = m.str("room");
  auto seq = m.u64("seq");
  auto epoch = m.id_string("epoch");
  if (!room || !seq || !epoch) return std::nullopt;
  HistoryReply h;
  h.room = std::string(*room);
  h.seq = *seq;
  h.epoch = std::move(*epoch);
  auto msgs = parse_messages(r, "msgs", h.room);
  if (!msgs) return std::nullopt;
  h.msgs = std::move(*msgs);
  return h;
}

std::optional<Ack> parse_ack(const Reply& r) {
  auto m = r.map();
  auto seq = m.u64("seq");
  if (!seq) return std::nullopt;
  return Ack{std::string(m.str("room").value_or("")), *seq};
}

std::optional<ConnectedInfo> parse_connected(const Reply& r) {
  auto m = r.map();
  ConnectedInfo info;
  info.client = m.id_string("client").value_or("");
  info.user = m.id_string("user").value_or("");
  info.ping = std::chrono::seconds(m.i64("ping").value_or(0));
  return info;
}

Error parse_error(const Reply& r) {
  auto m = r.map();
  return Error{std::string(m.str("code").value_or("internal")),
               std::string(m.str("reason").value_or(""))};
}

}  // namespace troupe::client

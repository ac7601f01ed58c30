#include "cluster/presence_script.hpp"

#include <msgpack.hpp>

#include "cluster/node_script.hpp"

namespace troupe::cluster {

namespace {

// msgpack-cxx: strings stay views into the payload instead of copies into the zone.
bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }

msgpack::object_handle unpack(std::string_view payload, std::string_view what) {
  try {
    return msgpack::unpack(payload.data(), payload.size(), reference_all);
  } catch (const std::exception& e) {
    throw bad_reply(std::string(what) + ": " + e.what());
  }
}

std::string_view bytes(const msgpack::object& o, std::string_view what) {
  if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
  if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
  throw bad_reply(std::string(what) + " is not a string");
}

// cmsgpack packs a Lua table {client, entry, ...} as an array; an empty one may be a map.
std::vector<std::pair<std::string_view, std::string_view>> pairs(const msgpack::object& o) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  if (o.type == msgpack::type::MAP && o.via.map.size == 0) return out;
  if (o.type != msgpack::type::ARRAY || o.via.array.size % 2 != 0)
    throw bad_reply("presence diff: not {client, entry, ...}");
  for (std::uint32_t i = 0; i < o.via.array.size; i += 2)
    out.emplace_back(bytes(o.via.array.ptr[i], "presence diff: a client"),
                     bytes(o.via.array.ptr[i + 1], "presence diff: an entry"));
  return out;
}

void put(msgpack::packer<msgpack::sbuffer>& out, std::string_view s) {
  out.pack_str(static_cast<std::uint32_t>(s.size()));
  out.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

std::uint64_t non_negative(const redis_reply& r, std::string_view what) {
  if (!r.is_integer() || r.integer < 0)
    throw bad_reply(std::string(what) + " is not a non-negative integer");
  return static_cast<std::uint64_t>(r.integer);
}

std::string text(const redis_reply& r, std::string_view what) {
  if (!r.is_string()) throw bad_reply(std::string(what) + " is not a string");
  return r.str;
}

// {[room,] name, user, client, ...}
std::vector<presence_event> events_of(const redis_reply& r, bool with_room) {
  std::vector<presence_event> out;
  const std::size_t width = with_room ? 4 : 3;
  if (!r.is_array() || r.elements.size() % width != 0)
    throw bad_reply("presence: events not {name, user, client, ...}");
  for (std::size_t i = 0; i < r.elements.size(); i += width) {
    presence_event e;
    std::size_t j = i;
    if (with_room) e.room = text(r.elements[j++], "presence event: room");
    e.name = text(r.elements[j++], "presence event: name");
    e.user = text(r.elements[j++], "presence event: user");
    e.client = text(r.elements[j], "presence event: client");
    out.push_back(std::move(e));
  }
  return out;
}

} // namespace

const redis_script& presence_script() {
  static const redis_script script{std::string(scripts::presence_text())};
  return script;
}
const redis_script& presence_read_script() {
  static const redis_script script{std::string(scripts::presence_read_text())};
  return script;
}
const redis_script& presence_sweep_script() {
  static const redis_script script{std::string(scripts::presence_sweep_text())};
  return script;
}

presence_keys presence_keys_for(std::string_view room) {
  const std::string tag = "tr:{" + std::string(room) + "}:";
  return {tag + "pres", tag + "powner", tag + "pgrace", tag + "pmeta",
          tag + "pch",  tag + "tch",    tag + "pusers"};
}

std::string node_rooms_key(std::string_view incarnation) {
  return "tr:node:" + std::string(incarnation) + ":rooms";
}

script_call presence_call(const presence_keys& keys, std::string_view room,
                          std::string_view incarnation,
                          const std::vector<presence_change>& changes) {
  script_call call{
      {keys.entries, keys.owners, keys.grace, keys.meta, node_rooms_key(incarnation), keys.users},
      {keys.channel, std::string(room), std::string(incarnation)}};
  call.args.reserve(3 + 4 * changes.size());
  for (const auto& c : changes) {
    call.args.emplace_back(1, static_cast<char>(c.what));
    call.args.push_back(c.client);
    call.args.push_back(c.user);
    call.args.push_back(c.entry);
  }
  return call;
}

presence_write decode_presence_write(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() != 3)
    throw bad_reply("presence: not {pseq, changed, events}");
  return {non_negative(reply.elements[0], "presence: pseq"),
          non_negative(reply.elements[1], "presence: changed") != 0,
          events_of(reply.elements[2], false)};
}

script_call presence_read_call(const presence_keys& keys) {
  return {{keys.entries, keys.meta}, {}};
}

presence_list_read decode_presence_read(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[1].is_array() ||
      reply.elements[1].elements.size() % 2 != 0)
    throw bad_reply("presence read: not {pseq, {client, entry, ...}}");
  presence_list_read out;
  out.pseq = non_negative(reply.elements[0], "presence read: pseq");
  const auto& flat = reply.elements[1].elements;
  out.entries.reserve(flat.size() / 2);
  for (std::size_t i = 0; i < flat.size(); i += 2) {
    if (!flat[i].is_string() || !flat[i + 1].is_string())
      throw bad_reply("presence read: an entry is not a string");
    out.entries.emplace_back(flat[i].str, flat[i + 1].str);
  }
  return out;
}

script_call presence_sweep_call(std::string_view dead_incarnation) {
  return {{node_rooms_key(dead_incarnation), std::string(nodes_key)},
          {std::string(dead_incarnation)}};
}

presence_sweep_result decode_presence_sweep(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() != 2)
    throw bad_reply("presence sweep: not {removed, events}");
  return {non_negative(reply.elements[0], "presence sweep: removed"),
          events_of(reply.elements[1], true)};
}

presence_diff_message decode_presence_diff(std::string_view payload) {
  auto handle = unpack(payload, "presence diff");
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 3 ||
      o.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER)
    throw bad_reply("presence diff: not [pseq, joins, leaves]");
  presence_diff_message d;
  d.pseq = o.via.array.ptr[0].via.u64;
  d.joins = pairs(o.via.array.ptr[1]);
  d.leaves = pairs(o.via.array.ptr[2]);
  return d;
}

std::string encode_typing_message(std::string_view incarnation, std::string_view client,
                                  std::string_view user, bool on) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> out(buffer);
  out.pack_array(4);
  put(out, incarnation);
  put(out, client);
  put(out, user);
  if (on)
    out.pack_true();
  else
    out.pack_false();
  return {buffer.data(), buffer.size()};
}

typing_message decode_typing_message(std::string_view payload) {
  auto handle = unpack(payload, "typing");
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4 ||
      o.via.array.ptr[3].type != msgpack::type::BOOLEAN)
    throw bad_reply("typing: not [incarnation, client, user, on]");
  return {bytes(o.via.array.ptr[0], "typing: incarnation"),
          bytes(o.via.array.ptr[1], "typing: client"), bytes(o.via.array.ptr[2], "typing: user"),
          o.via.array.ptr[3].via.boolean};
}

} // namespace troupe::cluster

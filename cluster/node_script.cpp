#include "cluster/node_script.hpp"

#include <msgpack.hpp>

namespace troupe::cluster {

const redis_script& heartbeat_script() {
  static const redis_script script{std::string(scripts::heartbeat_text())};
  return script;
}

std::string node_channel(std::string_view incarnation) {
  return "tr:node:" + std::string(incarnation);
}

script_call heartbeat_call(std::string_view incarnation, std::uint64_t timeout_ms) {
  return {{std::string(nodes_key)}, {std::string(incarnation), std::to_string(timeout_ms)}};
}

heartbeat_result decode_heartbeat(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_integer() ||
      !reply.elements[1].is_array())
    throw bad_reply("heartbeat: not {live, dead}");
  heartbeat_result result;
  result.live = static_cast<std::size_t>(std::max(0LL, reply.elements[0].integer));
  for (const auto& dead : reply.elements[1].elements)
    if (dead.is_string()) result.dead.push_back(dead.str);
  return result;
}

std::string encode_control(std::string_view kind, std::string_view body) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> out(buffer);
  out.pack_array(2);
  out.pack_str(static_cast<std::uint32_t>(kind.size()));
  out.pack_str_body(kind.data(), static_cast<std::uint32_t>(kind.size()));
  out.pack_bin(static_cast<std::uint32_t>(body.size()));
  out.pack_bin_body(body.data(), static_cast<std::uint32_t>(body.size()));
  return {buffer.data(), buffer.size()};
}

namespace {
bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }
} // namespace

control_message decode_control(std::string_view payload) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(payload.data(), payload.size(), reference_all);
  } catch (const std::exception& e) {
    throw bad_reply(std::string("control: ") + e.what());
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2 ||
      o.via.array.ptr[0].type != msgpack::type::STR ||
      o.via.array.ptr[1].type != msgpack::type::BIN)
    throw bad_reply("control: not [kind, body]");
  // The views point into `payload`: reference_all keeps strings in place.
  const auto& kind = o.via.array.ptr[0].via.str;
  const auto& body = o.via.array.ptr[1].via.bin;
  return {{kind.ptr, kind.size}, {body.ptr, body.size}};
}

} // namespace troupe::cluster

#include "cluster/publish_script.hpp"

#include <algorithm>
#include <charconv>

#include <msgpack.hpp>

namespace troupe::cluster {

namespace {

std::string_view text(const redis_reply& r) { return r.str; }

bool is_text(const redis_reply& r) { return r.is_string() || r.is_status(); }

const redis_reply& element(const redis_reply& r, std::size_t i) {
  if (!r.is_array() || i >= r.elements.size())
    throw bad_reply("reply: missing element " + std::to_string(i));
  return r.elements[i];
}

void check_error(const redis_reply& r) {
  if (r.is_error()) throw bad_reply(r.str);
}

std::uint64_t number(std::string_view s, std::string_view what) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size())
    throw bad_reply("reply: " + std::string(what) + " is not a number: " + std::string(s));
  return n;
}

std::uint64_t integer(const redis_reply& r, std::string_view what) {
  if (!r.is_integer() || r.integer < 0)
    throw bad_reply("reply: " + std::string(what) + " is not a non-negative integer");
  return static_cast<std::uint64_t>(r.integer);
}

// An entry [id, [field, value, ...]] whose id is <seq>-1.
room_message entry(const redis_reply& e) {
  const redis_reply& id = element(e, 0);
  const redis_reply& fields = element(e, 1);
  if (!is_text(id) || !fields.is_array()) throw bad_reply("stream entry: not [id, fields]");
  const auto dash = text(id).find('-');
  room_message m;
  m.seq = number(text(id).substr(0, dash), "entry id");
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const auto name = text(element(fields, i));
    const auto value = text(element(fields, i + 1));
    if (name == "ts")
      m.ts = number(value, "ts");
    else if (name == "user")
      m.user = value;
    else if (name == "key")
      m.key = value;
    else if (name == "data")
      m.data = value;
  }
  return m;
}

// msgpack-cxx: strings stay views into the payload instead of copies into the zone.
bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }

std::uint64_t unpacked_integer(const msgpack::object& o, std::string_view what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER)
    throw bad_reply("published: " + std::string(what) + " is not an unsigned integer");
  return o.via.u64;
}

std::string_view unpacked_bytes(const msgpack::object& o, std::string_view what) {
  if (o.type == msgpack::type::STR) // cmsgpack packs every Lua string as str, any bytes
    return {o.via.str.ptr, o.via.str.size};
  if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
  throw bad_reply("published: " + std::string(what) + " is not a string");
}

} // namespace

room_keys keys_for(std::string_view room) {
  const std::string tag = "tr:{" + std::string(room) + "}:";
  return {tag + "meta", tag + "stream", tag + "keys", tag + "ch"};
}

std::vector<const char*> redis_command::argv() const {
  std::vector<const char*> out;
  out.reserve(args.size());
  for (const auto& a : args)
    out.push_back(a.data());
  return out;
}

std::vector<std::size_t> redis_command::argvlen() const {
  std::vector<std::size_t> out;
  out.reserve(args.size());
  for (const auto& a : args)
    out.push_back(a.size());
  return out;
}

const redis_script& publish_script() {
  static const redis_script script{std::string(scripts::publish_text())};
  return script;
}

const redis_script& read_script() {
  static const redis_script script{std::string(scripts::read_text())};
  return script;
}

script_call publish_call(const room_keys& keys, const publish_args& args) {
  // The channel is an argument, not a key: Redis Cluster routes PUBLISH by no slot.
  return {{keys.meta, keys.stream, keys.keys},
          {keys.channel, std::string(args.epoch_candidate),
           std::to_string(std::max<std::uint64_t>(args.history, 1)), std::string(args.user),
           std::string(args.key), std::string(args.data)}};
}

redis_command eval_command(const redis_script& script, const script_call& call) {
  redis_command c;
  c.args.reserve(3 + call.keys.size() + call.args.size());
  c.args.emplace_back("EVALSHA");
  c.args.push_back(script.sha1());
  c.args.push_back(std::to_string(call.keys.size()));
  c.args.insert(c.args.end(), call.keys.begin(), call.keys.end());
  c.args.insert(c.args.end(), call.args.begin(), call.args.end());
  return c;
}

publish_result decode_publish_reply(const redis_reply& reply) {
  check_error(reply);
  if (!reply.is_array() || reply.elements.size() != 4)
    throw bad_reply("publish: not {seq, epoch, ts, duplicate}");
  const redis_reply& epoch = element(reply, 1);
  if (!is_text(epoch)) throw bad_reply("publish: the epoch is not a string");
  return {integer(element(reply, 0), "seq"), std::string(text(epoch)),
          integer(element(reply, 2), "ts"), integer(element(reply, 3), "duplicate") != 0};
}

published_message decode_published(std::string_view payload) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(payload.data(), payload.size(), reference_all);
  } catch (const std::exception& e) {
    throw bad_reply(std::string("published: ") + e.what());
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 6)
    throw bad_reply("published: not [seq, epoch, ts, user, key, data]");
  const msgpack::object* f = o.via.array.ptr;
  published_message p;
  p.message.seq = unpacked_integer(f[0], "seq");
  p.epoch = unpacked_bytes(f[1], "epoch");
  p.message.ts = unpacked_integer(f[2], "ts");
  p.message.user = unpacked_bytes(f[3], "user");
  p.message.key = unpacked_bytes(f[4], "key");
  p.message.data = unpacked_bytes(f[5], "data");
  return p;
}

redis_command range_command(const room_keys& keys, std::uint64_t from, std::uint64_t to) {
  // "<n>" as a start means <n>-0 and as an end <n>-<max>: exactly the entry <n>-1.
  return {{"XRANGE", keys.stream, std::to_string(from), std::to_string(to)}};
}

std::vector<room_message> decode_stream_entries(const redis_reply& reply) {
  check_error(reply);
  if (!reply.is_array()) throw bad_reply("stream: not an array of entries");
  std::vector<room_message> out;
  out.reserve(reply.elements.size());
  for (std::size_t i = 0; i < reply.elements.size(); ++i)
    out.push_back(entry(element(reply, i)));
  return out;
}

script_call read_call(const room_keys& keys, std::uint64_t from, std::uint64_t to,
                      std::size_t count, std::string_view epoch_candidate) {
  return {{keys.meta, keys.stream, keys.keys},
          {std::to_string(from), to == 0 ? std::string("+") : std::to_string(to),
           std::to_string(count), std::string(epoch_candidate)}};
}

script_call newest_call(const room_keys& keys, std::size_t count,
                        std::string_view epoch_candidate) {
  return {{keys.meta, keys.stream, keys.keys},
          {"0", "+", std::to_string(count), std::string(epoch_candidate)}};
}

script_call top_call(const room_keys& keys) {
  return {{keys.meta, keys.stream, keys.keys}, {"0", "+", "-1", ""}};
}

room_read decode_read(const redis_reply& reply) {
  check_error(reply);
  if (!reply.is_array() || reply.elements.size() != 3)
    throw bad_reply("read: not {epoch, top, entries}");
  room_read read;
  const redis_reply& epoch = element(reply, 0);
  if (!is_text(epoch)) throw bad_reply("read: the epoch is not a string");
  read.top.epoch = text(epoch);
  read.top.seq = integer(element(reply, 1), "top");
  read.entries = decode_stream_entries(element(reply, 2));
  return read;
}

} // namespace troupe::cluster

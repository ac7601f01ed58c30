#include "cluster/publish_script.hpp"

#include <algorithm>
#include <charconv>

#include <hiredis/hiredis.h>
#include <msgpack.hpp>

namespace troupe::cluster {

namespace {

std::string_view text(const redisReply& r) { return {r.str, r.len}; }

bool is_text(const redisReply& r) {
  return r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS;
}

const redisReply& element(const redisReply& r, std::size_t i) {
  if (r.type != REDIS_REPLY_ARRAY || i >= r.elements || !r.element[i])
    throw bad_reply("reply: missing element " + std::to_string(i));
  return *r.element[i];
}

void check_error(const redisReply& r) {
  if (r.type == REDIS_REPLY_ERROR) throw bad_reply(std::string(text(r)));
}

std::uint64_t number(std::string_view s, std::string_view what) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size())
    throw bad_reply("reply: " + std::string(what) + " is not a number: " + std::string(s));
  return n;
}

std::uint64_t integer(const redisReply& r, std::string_view what) {
  if (r.type != REDIS_REPLY_INTEGER || r.integer < 0)
    throw bad_reply("reply: " + std::string(what) + " is not a non-negative integer");
  return static_cast<std::uint64_t>(r.integer);
}

// An entry [id, [field, value, ...]] whose id is <seq>-1.
room_message entry(const redisReply& e) {
  const redisReply& id = element(e, 0);
  const redisReply& fields = element(e, 1);
  if (!is_text(id) || fields.type != REDIS_REPLY_ARRAY)
    throw bad_reply("stream entry: not [id, fields]");
  const auto dash = text(id).find('-');
  room_message m;
  m.seq = number(text(id).substr(0, dash), "entry id");
  for (std::size_t i = 0; i + 1 < fields.elements; i += 2) {
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

redis_command publish_command(const room_keys& keys, const publish_args& args, script_call how) {
  redis_command c;
  c.args.reserve(11);
  if (how == script_call::evalsha) {
    c.args.emplace_back("EVALSHA");
    c.args.emplace_back(scripts::publish_sha1());
  } else {
    c.args.emplace_back("EVAL");
    c.args.emplace_back(scripts::publish_text());
  }
  c.args.emplace_back("3");
  c.args.push_back(keys.meta);
  c.args.push_back(keys.stream);
  c.args.push_back(keys.keys);
  // The channel is an argument, not a key: Redis Cluster routes PUBLISH by no slot.
  c.args.push_back(keys.channel);
  c.args.emplace_back(args.epoch_candidate);
  c.args.push_back(std::to_string(std::max<std::uint64_t>(args.history, 1)));
  c.args.emplace_back(args.user);
  c.args.emplace_back(args.key);
  c.args.emplace_back(args.data);
  return c;
}

bool is_noscript(const redisReply& reply) noexcept {
  return reply.type == REDIS_REPLY_ERROR && text(reply).starts_with("NOSCRIPT");
}

publish_result decode_publish_reply(const redisReply& reply) {
  check_error(reply);
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 4)
    throw bad_reply("publish: not {seq, epoch, ts, duplicate}");
  const redisReply& epoch = element(reply, 1);
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

std::vector<room_message> decode_stream_entries(const redisReply& reply) {
  check_error(reply);
  if (reply.type != REDIS_REPLY_ARRAY) throw bad_reply("stream: not an array of entries");
  std::vector<room_message> out;
  out.reserve(reply.elements);
  for (std::size_t i = 0; i < reply.elements; ++i)
    out.push_back(entry(element(reply, i)));
  return out;
}

redis_command top_command(const room_keys& keys) { return {{"HMGET", keys.meta, "epoch", "seq"}}; }

room_top decode_top(const redisReply& reply) {
  check_error(reply);
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2)
    throw bad_reply("top: not [epoch, seq]");
  room_top top;
  const redisReply& epoch = element(reply, 0);
  const redisReply& seq = element(reply, 1);
  if (is_text(epoch)) top.epoch = text(epoch);
  if (is_text(seq)) top.seq = number(text(seq), "seq");
  return top;
}

std::vector<redis_command> repair_read_commands(const room_keys& keys, std::uint64_t from,
                                                std::uint64_t to) {
  return {{{"MULTI"}}, top_command(keys), range_command(keys, from, to), {{"EXEC"}}};
}

repair_read decode_repair_read(const redisReply& exec_reply) {
  check_error(exec_reply);
  if (exec_reply.type != REDIS_REPLY_ARRAY || exec_reply.elements != 2)
    throw bad_reply("repair read: not the replies of HMGET and XRANGE");
  return {decode_top(element(exec_reply, 0)), decode_stream_entries(element(exec_reply, 1))};
}

} // namespace troupe::cluster

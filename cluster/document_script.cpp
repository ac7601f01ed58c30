#include "cluster/document_script.hpp"

#include <algorithm>
#include <charconv>

#include <msgpack.hpp>

#include "protocol/operation_codec.hpp"

namespace troupe::cluster {

namespace {

bool is_text(const redis_reply& r) { return r.is_string() || r.is_status(); }

const redis_reply& element(const redis_reply& r, std::size_t i) {
  if (!r.is_array() || i >= r.elements.size())
    throw bad_reply("reply: missing element " + std::to_string(i));
  return r.elements[i];
}

std::uint64_t integer(const redis_reply& r, std::string_view what) {
  if (!r.is_integer() || r.integer < 0)
    throw bad_reply("reply: " + std::string(what) + " is not a non-negative integer");
  return static_cast<std::uint64_t>(r.integer);
}

std::uint64_t number(std::string_view s, std::string_view what) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size())
    throw bad_reply("reply: " + std::string(what) + " is not a number: " + std::string(s));
  return n;
}

ot::operation unpack_op(std::string_view bytes) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    throw bad_reply(std::string("operation: ") + e.what());
  }
  auto parsed = protocol::unpack_operation(handle.get());
  if (!parsed.op) throw bad_reply("operation: " + parsed.error);
  return std::move(*parsed.op);
}

// An entry [id, [field, value, ...]] whose id is <rev>-1.
document_entry entry(const redis_reply& e) {
  const redis_reply& id = element(e, 0);
  const redis_reply& fields = element(e, 1);
  if (!is_text(id) || !fields.is_array()) throw bad_reply("stream entry: not [id, fields]");
  const std::string_view text = id.str;
  document_entry out;
  out.rev = number(text.substr(0, text.find('-')), "entry id");
  bool has_op = false;
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string_view name = element(fields, i).str;
    const std::string& value = element(fields, i + 1).str;
    if (name == "user")
      out.user = value;
    else if (name == "key")
      out.key = value;
    else if (name == "cid")
      out.cid = value;
    else if (name == "op")
      out.op = unpack_op(value), has_op = true;
  }
  if (!has_op) throw bad_reply("stream entry " + std::to_string(out.rev) + ": no op");
  return out;
}

std::string bytes(const msgpack::object& o, std::string_view what) {
  if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
  if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
  throw bad_reply("published op: " + std::string(what) + " is not a string");
}

} // namespace

const redis_script& doc_commit_script() {
  static const redis_script script{std::string(scripts::doc_commit_text())};
  return script;
}

const redis_script& doc_read_script() {
  static const redis_script script{std::string(scripts::doc_read_text())};
  return script;
}

document_keys document_keys_for(std::string_view room) {
  const std::string tag = "tr:{" + std::string(room) + "}:";
  return {tag + "dmeta", tag + "dops", tag + "dkeys", tag + "dsnap", tag + "dch"};
}

std::string pack_op(const ot::operation& op) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  protocol::pack_operation_spanning(pk, op);
  return {buffer.data(), buffer.size()};
}

script_call commit_call(const document_keys& keys, const commit_args& args) {
  // The channel is an argument, not a key: Redis Cluster routes PUBLISH by no slot.
  return {{keys.meta, keys.ops, keys.keys, keys.snapshot},
          {keys.channel, std::string(args.epoch),
           std::to_string(std::max<std::uint64_t>(args.log, 1)), std::to_string(args.base),
           std::string(args.user), std::string(args.key), std::string(args.cid),
           std::string(args.op), args.snapshot ? "1" : "0",
           args.snapshot ? std::string(*args.snapshot) : std::string(),
           std::to_string(std::max<std::size_t>(args.missed, 1))}};
}

commit_result decode_commit_reply(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() < 3)
    throw bad_reply("commit: not {status, rev, epoch}");
  const redis_reply& status = element(reply, 0);
  const redis_reply& epoch = element(reply, 2);
  if (!is_text(status) || !is_text(epoch)) throw bad_reply("commit: status or epoch not a string");
  commit_result out;
  if (status.str == "ok")
    out.status = commit_status::accepted;
  else if (status.str == "dup")
    out.status = commit_status::duplicate;
  else if (status.str == "stale")
    out.status = commit_status::stale;
  else if (status.str == "epoch")
    out.status = commit_status::epoch;
  else
    throw bad_reply("commit: unknown status " + status.str);
  out.rev = integer(element(reply, 1), "rev");
  out.epoch = epoch.str;
  if (reply.elements.size() > 3) {
    const redis_reply& missed = element(reply, 3);
    if (!missed.is_array()) throw bad_reply("commit: the missed operations are not an array");
    out.missed.reserve(missed.elements.size());
    for (const auto& e : missed.elements)
      out.missed.push_back(entry(e));
  }
  return out;
}

published_op decode_published_op(std::string_view payload) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(payload.data(), payload.size());
  } catch (const std::exception& e) {
    throw bad_reply(std::string("published op: ") + e.what());
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 6)
    throw bad_reply("published op: not [rev, epoch, user, key, cid, op]");
  const msgpack::object* f = o.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER)
    throw bad_reply("published op: rev is not an unsigned integer");
  published_op p;
  p.entry.rev = f[0].via.u64;
  p.epoch = bytes(f[1], "epoch");
  p.entry.user = bytes(f[2], "user");
  p.entry.key = bytes(f[3], "key");
  p.entry.cid = bytes(f[4], "cid");
  p.entry.op = unpack_op(bytes(f[5], "op"));
  return p;
}

script_call load_call(const document_keys& keys, std::string_view epoch_candidate) {
  return {{keys.meta, keys.ops, keys.keys, keys.snapshot}, {"0", std::string(epoch_candidate)}};
}

script_call range_call(const document_keys& keys, std::uint64_t from) {
  return {{keys.meta, keys.ops, keys.keys, keys.snapshot},
          {std::to_string(std::max<std::uint64_t>(from, 1)), ""}};
}

document_read decode_document_read(const redis_reply& reply) {
  if (reply.is_error()) throw bad_reply(reply.str);
  if (!reply.is_array() || reply.elements.size() != 5)
    throw bad_reply("document read: not {epoch, rev, snapshot rev, snapshot text, entries}");
  const redis_reply& epoch = element(reply, 0);
  const redis_reply& text = element(reply, 3);
  const redis_reply& entries = element(reply, 4);
  if (!is_text(epoch) || !is_text(text) || !entries.is_array())
    throw bad_reply("document read: wrong types");
  document_read out;
  out.epoch = epoch.str;
  out.rev = integer(element(reply, 1), "rev");
  out.snapshot_rev = integer(element(reply, 2), "snapshot rev");
  out.snapshot_text = text.str;
  out.entries.reserve(entries.elements.size());
  for (const auto& e : entries.elements)
    out.entries.push_back(entry(e));
  return out;
}

} // namespace troupe::cluster

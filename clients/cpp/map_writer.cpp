#include "clients/cpp/map_writer.hpp"

#include "protocol/operation_codec.hpp"

namespace troupe::client {

map_writer::map_writer(std::string_view type) : pk_(buf_) {
  buf_.s.reserve(64);
  buf_.s.push_back(static_cast<char>(0x80)); // fixmap placeholder, patched in finish()
  str("t", type);
}

msgpack::packer<map_writer::buffer>& map_writer::begin(std::string_view key) {
  pk_.pack_str(static_cast<std::uint32_t>(key.size()));
  pk_.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
  ++count_;
  return pk_;
}

map_writer& map_writer::str(std::string_view key, std::string_view v) {
  begin(key);
  pk_.pack_str(static_cast<std::uint32_t>(v.size()));
  pk_.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
  return *this;
}

map_writer& map_writer::operation(std::string_view key, const ot::operation& op) {
  protocol::pack_operation(begin(key), op);
  return *this;
}

map_writer& map_writer::u64(std::string_view key, std::uint64_t v) {
  begin(key).pack_uint64(v);
  return *this;
}

map_writer& map_writer::i64(std::string_view key, std::int64_t v) {
  begin(key).pack_int64(v);
  return *this;
}

map_writer& map_writer::boolean(std::string_view key, bool v) {
  auto& pk = begin(key);
  if (v)
    pk.pack_true();
  else
    pk.pack_false();
  return *this;
}

map_writer& map_writer::value(std::string_view key, const client::value& v) {
  begin(key).pack(v.object());
  return *this;
}

map_writer& map_writer::object(std::string_view key, const msgpack::object& v) {
  begin(key).pack(v);
  return *this;
}

std::string map_writer::finish() {
  if (count_ <= 15) {
    buf_.s[0] = static_cast<char>(0x80 | count_);
  } else { // map16: replace the one-byte placeholder with three bytes
    char hdr[3] = {static_cast<char>(0xde), static_cast<char>(count_ >> 8),
                   static_cast<char>(count_ & 0xff)};
    buf_.s.replace(0, 1, hdr, 3);
  }
  return std::move(buf_.s);
}

} // namespace troupe::client

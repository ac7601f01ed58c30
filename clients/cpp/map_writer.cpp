#include "clients/cpp/map_writer.hpp"

namespace troupe::client {

MapWriter::MapWriter(std::string_view type) : pk_(buf_) {
  buf_.s.reserve(64);
  buf_.s.push_back(static_cast<char>(0x80));  // fixmap placeholder, patched in finish()
  str("t", type);
}

msgpack::packer<MapWriter::Buffer>& MapWriter::begin(std::string_view key) {
  pk_.pack_str(static_cast<std::uint32_t>(key.size()));
  pk_.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
  ++count_;
  return pk_;
}

MapWriter& MapWriter::str(std::string_view key, std::string_view v) {
  begin(key);
  pk_.pack_str(static_cast<std::uint32_t>(v.size()));
  pk_.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
  return *this;
}

MapWriter& MapWriter::operation(std::string_view key, const ot::operation& op) {
  const auto& parts = op.components();
  begin(key).pack_array(static_cast<std::uint32_t>(parts.size()));
  for (const auto& part : parts) {
    switch (part.type) {
      case ot::component::kind::retain:
        pk_.pack_uint64(part.count);
        break;
      case ot::component::kind::remove:
        pk_.pack_int64(-static_cast<std::int64_t>(part.count));
        break;
      case ot::component::kind::insert:
        pk_.pack_str(static_cast<std::uint32_t>(part.text.size()));
        pk_.pack_str_body(part.text.data(), static_cast<std::uint32_t>(part.text.size()));
        break;
    }
  }
  return *this;
}

MapWriter& MapWriter::u64(std::string_view key, std::uint64_t v) {
  begin(key).pack_uint64(v);
  return *this;
}

MapWriter& MapWriter::i64(std::string_view key, std::int64_t v) {
  begin(key).pack_int64(v);
  return *this;
}

MapWriter& MapWriter::boolean(std::string_view key, bool v) {
  auto& pk = begin(key);
  if (v) pk.pack_true(); else pk.pack_false();
  return *this;
}

MapWriter& MapWriter::value(std::string_view key, const Value& v) {
  begin(key).pack(v.object());
  return *this;
}

MapWriter& MapWriter::object(std::string_view key, const msgpack::object& v) {
  begin(key).pack(v);
  return *this;
}

std::string MapWriter::finish() {
  if (count_ <= 15) {
    buf_.s[0] = static_cast<char>(0x80 | count_);
  } else {  // map16: replace the one-byte placeholder with three bytes
    char hdr[3] = {static_cast<char>(0xde), static_cast<char>(count_ >> 8),
                   static_cast<char>(count_ & 0xff)};
    buf_.s.replace(0, 1, hdr, 3);
  }
  return std::move(buf_.s);
}

}  // namespace troupe::client

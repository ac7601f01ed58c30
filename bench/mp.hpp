#pragma once
// Small MessagePack helpers shared by the dialects: a std::string sink for msgpack::packer
// and zero-copy lookups in decoded maps.
#include <msgpack.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace bench::mp {

// msgpack::packer writes through write(); appending to a std::string keeps one buffer.
struct StringSink {
  std::string& out;
  void write(const char* p, std::size_t n) { out.append(p, n); }
};
using Packer = msgpack::packer<StringSink>;

inline void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

inline void pack_bin(Packer& pk, const std::uint8_t* p, std::size_t n) {
  pk.pack_bin(static_cast<std::uint32_t>(n));
  pk.pack_bin_body(reinterpret_cast<const char*>(p), static_cast<std::uint32_t>(n));
}

inline std::string_view as_str(const msgpack::object& o) {
  return o.type == msgpack::type::STR ? std::string_view(o.via.str.ptr, o.via.str.size)
                                      : std::string_view();
}

inline bool is_key(const msgpack::object& k, std::string_view name) {
  return k.type == msgpack::type::STR && as_str(k) == name;
}

// The value under key `name` in map `m`, or nullptr.
inline const msgpack::object* get(const msgpack::object& m, std::string_view name) {
  if (m.type != msgpack::type::MAP) return nullptr;
  for (std::uint32_t i = 0; i < m.via.map.size; ++i) {
    if (is_key(m.via.map.ptr[i].key, name)) return &m.via.map.ptr[i].val;
  }
  return nullptr;
}

inline std::string_view get_str(const msgpack::object& m, std::string_view name) {
  const msgpack::object* o = get(m, name);
  return o ? as_str(*o) : std::string_view();
}

inline std::uint64_t as_u64(const msgpack::object* o) {
  if (!o) return 0;
  if (o->type == msgpack::type::POSITIVE_INTEGER) return o->via.u64;
  return 0;
}

// Let decoded str and bin point into the received frame instead of being copied: the
// frame outlives every use (parsing is synchronous).
inline bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }

}  // namespace bench::mp

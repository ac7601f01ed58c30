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

// A forward-only MessagePack reader that builds nothing: for presence frames, which carry
// millions of entries in a burst and where msgpack::unpack's object tree was the
// generator's largest cost. Every read checks bounds and returns false on a mismatch.
class Reader {
public:
  Reader(const char* p, std::size_t n)
      : p_(reinterpret_cast<const std::uint8_t*>(p)), end_(p_ + n) {}
  const char* pos() const { return reinterpret_cast<const char*>(p_); }

  bool map(std::uint32_t& n) { return header(0x80, 0x8f, 0xde, 0xdf, n); }
  bool array(std::uint32_t& n) { return header(0x90, 0x9f, 0xdc, 0xdd, n); }

  bool str(std::string_view& s) {
    if (p_ >= end_) return false;
    const std::uint8_t b = *p_;
    std::uint32_t n;
    if ((b & 0xe0) == 0xa0) {
      n = b & 0x1f;
      ++p_;
    } else if (b == 0xd9 || b == 0xda || b == 0xdb) {
      ++p_;
      if (!be(b == 0xd9 ? 1 : b == 0xda ? 2 : 4, n)) return false;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  bool uint(std::uint64_t& v) {
    if (p_ >= end_) return false;
    const std::uint8_t b = *p_;
    if (b <= 0x7f) {
      v = b;
      ++p_;
      return true;
    }
    if (b < 0xcc || b > 0xcf) return false;
    ++p_;
    return be64(1u << (b - 0xcc), v);
  }

  // Skips one value, however nested.
  bool skip() {
    std::uint64_t pending = 1;
    while (pending > 0) {
      --pending;
      if (p_ >= end_) return false;
      const std::uint8_t b = *p_++;
      std::uint32_t n = 0;
      std::size_t bytes = 0; // payload to jump over
      if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      } else if (b <= 0x8f) {
        pending += 2u * (b & 0x0f);
      } else if (b <= 0x9f) {
        pending += b & 0x0f;
      } else if (b <= 0xbf) {
        bytes = b & 0x1f;
      } else if (b >= 0xc4 && b <= 0xc6) { // bin 8/16/32
        if (!be(1u << (b - 0xc4), n)) return false;
        bytes = n;
      } else if (b >= 0xc7 && b <= 0xc9) { // ext 8/16/32: length, type, data
        if (!be(1u << (b - 0xc7), n)) return false;
        bytes = std::size_t{n} + 1;
      } else if (b == 0xca || b == 0xcb) {
        bytes = b == 0xca ? 4 : 8;
      } else if (b >= 0xcc && b <= 0xd3) { // uint / int 8..64
        bytes = std::size_t{1} << ((b - 0xcc) & 3);
      } else if (b >= 0xd4 && b <= 0xd8) { // fixext 1..16: type, data
        bytes = 1 + (std::size_t{1} << (b - 0xd4));
      } else if (b >= 0xd9 && b <= 0xdb) { // str 8/16/32
        if (!be(1u << (b - 0xd9), n)) return false;
        bytes = n;
      } else if (b == 0xdc || b == 0xdd) {
        if (!be(b == 0xdc ? 2 : 4, n)) return false;
        pending += n;
      } else if (b == 0xde || b == 0xdf) {
        if (!be(b == 0xde ? 2 : 4, n)) return false;
        pending += 2ull * n;
      } else {
        return false; // 0xc1: never used
      }
      if (static_cast<std::size_t>(end_ - p_) < bytes) return false;
      p_ += bytes;
    }
    return true;
  }

private:
  bool header(std::uint8_t fix_lo, std::uint8_t fix_hi, std::uint8_t b16, std::uint8_t b32,
              std::uint32_t& n) {
    if (p_ >= end_) return false;
    const std::uint8_t b = *p_;
    if (b >= fix_lo && b <= fix_hi) {
      n = b & 0x0f;
      ++p_;
      return true;
    }
    if (b != b16 && b != b32) return false;
    ++p_;
    return be(b == b16 ? 2 : 4, n);
  }
  bool be(unsigned width, std::uint32_t& n) {
    std::uint64_t v;
    if (!be64(width, v)) return false;
    n = static_cast<std::uint32_t>(v);
    return true;
  }
  bool be64(unsigned width, std::uint64_t& v) {
    if (static_cast<std::size_t>(end_ - p_) < width) return false;
    v = 0;
    for (unsigned i = 0; i < width; ++i)
      v = (v << 8) | p_[i];
    p_ += width;
    return true;
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

} // namespace bench::mp

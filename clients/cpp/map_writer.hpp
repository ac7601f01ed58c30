// Builds one MessagePack map of the protocol into a byte string: `t`, then fields.
// The count is patched in at the end, so callers need not know it up front.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "clients/cpp/value.hpp"
#include "ot/text_operation.hpp"

namespace troupe::client {

class map_writer {
public:
  struct buffer {
    std::string s;
    void write(const char* p, std::size_t n) { s.append(p, n); }
  };

  explicit map_writer(std::string_view type);

  map_writer& str(std::string_view key, std::string_view v);
  map_writer& u64(std::string_view key, std::uint64_t v);
  map_writer& i64(std::string_view key, std::int64_t v);
  map_writer& boolean(std::string_view key, bool v);
  map_writer& value(std::string_view key, const client::value& v);
  map_writer& object(std::string_view key, const msgpack::object& v);
  // A text operation in its wire form (retain n, delete -n, insert "text").
  map_writer& operation(std::string_view key, const ot::operation& op);
  template <class T>
  map_writer& field(std::string_view key, const T& v) {
    begin(key);
    pk_.pack(v);
    return *this;
  }
  // Starts a field and hands out the packer for its value (exactly one value must follow).
  msgpack::packer<buffer>& begin(std::string_view key);

  // The finished map. The writer is spent afterwards.
  std::string finish();

private:
  buffer buf_;
  msgpack::packer<buffer> pk_;
  std::uint32_t count_ = 0;
};

} // namespace troupe::client

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

class MapWriter {
 public:
  struct Buffer {
    std::string s;
    void write(const char* p, std::size_t n) { s.append(p, n); }
  };

  explicit MapWriter(std::string_view type);

  MapWriter& str(std::string_view key, std::string_view v);
  MapWriter& u64(std::string_view key, std::uint64_t v);
  MapWriter& i64(std::string_view key, std::int64_t v);
  MapWriter& boolean(std::string_view key, bool v);
  MapWriter& value(std::string_view key, const Value& v);
  MapWriter& object(std::string_view key, const msgpack::object& v);
  // A text operation in its wire form (retain n, delete -n, insert "text").
  MapWriter& operation(std::string_view key, const ot::operation& op);
  template <class T>
  MapWriter& field(std::string_view key, const T& v) {
    begin(key);
    pk_.pack(v);
    return *this;
  }
  // Starts a field and hands out the packer for its value (exactly one value must follow).
  msgpack::packer<Buffer>& begin(std::string_view key);

  // The finished map. The writer is spent afterwards.
  std::string finish();

 private:
  Buffer buf_;
  msgpack::packer<Buffer> pk_;
  std::uint32_t count_ = 0;
};

}  // namespace troupe::client

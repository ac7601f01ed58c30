#include "clients/cpp/value.hpp"

#include <sstream>
#include <stdexcept>

namespace troupe::client {

namespace {
struct StringBuffer {
  std::string s;
  void write(const char* p, size_t n) { s.append(p, n); }
};
} // namespace

value::value() : obj_() {}

value value::from_encoded(std::string_view bytes) {
  std::size_t off = 0;
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(bytes.data(), bytes.size(), off);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("not MessagePack: ") + e.what());
  }
  if (off != bytes.size()) throw std::invalid_argument("more than one MessagePack value");
  auto owner = std::make_shared<msgpack::object_handle>(std::move(h));
  const msgpack::object obj = owner->get();
  return value(std::move(owner), obj);
}

std::optional<std::string_view> value::str() const {
  if (obj_.type != msgpack::type::STR) return std::nullopt;
  return std::string_view(obj_.via.str.ptr, obj_.via.str.size);
}

std::string value::encode() const {
  StringBuffer b;
  msgpack::pack(b, obj_);
  return std::move(b.s);
}

std::string value::to_string() const {
  std::ostringstream os;
  os << obj_;
  return os.str();
}

} // namespace troupe::client

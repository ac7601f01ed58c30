// A MessagePack value that owns its memory: the `data` of a message, or any field of a reply.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace troupe::client {

class value {
public:
  value(); // nil

  // Keeps `owner` (a zone or an unpacked frame) alive for as long as `obj` is used.
  value(std::shared_ptr<const void> owner, const msgpack::object& obj)
      : owner_(std::move(owner)), obj_(obj) {}

  // Any type msgpack-cxx can convert: strings, numbers, vectors, maps, …
  template <class T>
  static value from(const T& v) {
    auto zone = std::make_shared<msgpack::zone>();
    msgpack::object obj(v, *zone);
    return value(std::move(zone), obj);
  }
  // One encoded MessagePack value. Throws std::invalid_argument if it is not exactly one.
  static value from_encoded(std::string_view bytes);

  const msgpack::object& object() const { return obj_; }
  msgpack::type::object_type type() const { return obj_.type; }
  bool is_nil() const { return obj_.type == msgpack::type::NIL; }

  template <class T>
  T as() const {
    return obj_.as<T>();
  }

  // The string, if the value is a string.
  std::optional<std::string_view> str() const;
  // The value's MessagePack encoding.
  std::string encode() const;
  // A JSON-like rendering for logs and command-line tools.
  std::string to_string() const;

private:
  std::shared_ptr<const void> owner_;
  msgpack::object obj_;
};

} // namespace troupe::client

// Read access to one MessagePack map of the protocol: fields by key, with their types
// checked. Unknown keys are simply never asked for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace troupe::client {

class map_view {
public:
  explicit map_view(const msgpack::object& obj) : obj_(obj) {}

  bool is_map() const { return obj_.type == msgpack::type::MAP; }
  // The value under `key`, or nullptr.
  const msgpack::object* get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key) != nullptr; }

  std::optional<std::string_view> str(std::string_view key) const;
  std::optional<std::uint64_t> u64(std::string_view key) const; // non-negative integers
  std::optional<std::int64_t> i64(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  // An array's elements, or nullopt.
  std::optional<msgpack::object_array> array(std::string_view key) const;
  // A string, or an integer rendered as a string (for ids whose type the contract leaves open).
  std::optional<std::string> id_string(std::string_view key) const;

  const msgpack::object& object() const { return obj_; }

private:
  const msgpack::object& obj_;
};

} // namespace troupe::client

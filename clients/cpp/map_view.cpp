#include "clients/cpp/map_view.hpp"

namespace troupe::client {

const msgpack::object* map_view::get(std::string_view key) const {
  if (obj_.type != msgpack::type::MAP) return nullptr;
  const auto& m = obj_.via.map;
  for (std::uint32_t i = 0; i < m.size; ++i) {
    const auto& k = m.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key)
      return &m.ptr[i].val;
  }
  return nullptr;
}

std::optional<std::string_view> map_view::str(std::string_view key) const {
  const auto* v = get(key);
  if (!v || v->type != msgpack::type::STR) return std::nullopt;
  return std::string_view(v->via.str.ptr, v->via.str.size);
}

std::optional<std::uint64_t> map_view::u64(std::string_view key) const {
  const auto* v = get(key);
  if (!v || v->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return v->via.u64;
}

std::optional<std::int64_t> map_view::i64(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (v->type == msgpack::type::NEGATIVE_INTEGER) return v->via.i64;
  if (v->type == msgpack::type::POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
    return static_cast<std::int64_t>(v->via.u64);
  if (v->type == msgpack::type::FLOAT64 || v->type == msgpack::type::FLOAT32)
    return static_cast<std::int64_t>(v->via.f64);
  return std::nullopt;
}

std::optional<bool> map_view::boolean(std::string_view key) const {
  const auto* v = get(key);
  if (!v || v->type != msgpack::type::BOOLEAN) return std::nullopt;
  return v->via.boolean;
}

std::optional<msgpack::object_array> map_view::array(std::string_view key) const {
  const auto* v = get(key);
  if (!v || v->type != msgpack::type::ARRAY) return std::nullopt;
  return v->via.array;
}

std::optional<std::string> map_view::id_string(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (v->type == msgpack::type::STR) return std::string(v->via.str.ptr, v->via.str.size);
  if (v->type == msgpack::type::POSITIVE_INTEGER) return std::to_string(v->via.u64);
  if (v->type == msgpack::type::NEGATIVE_INTEGER) return std::to_string(v->via.i64);
  return std::nullopt;
}

} // namespace troupe::client

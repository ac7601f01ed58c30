#include "protocol/operation_codec.hpp"

#include <span>

namespace troupe::protocol {

std::string unpack_components(const msgpack::object& value, std::vector<ot::wire_component>& out) {
  out.clear();
  if (value.type != msgpack::type::ARRAY) return "an operation must be an array";
  out.reserve(value.via.array.size);
  std::size_t i = 0;
  for (const auto& part : std::span(value.via.array.ptr, value.via.array.size)) {
    switch (part.type) {
    case msgpack::type::POSITIVE_INTEGER:
      if (part.via.u64 > static_cast<std::uint64_t>(INT64_MAX))
        return "component " + std::to_string(i) + ": retain is out of range";
      out.emplace_back(static_cast<std::int64_t>(part.via.u64));
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      // -INT64_MIN is no int64: no count, so no delete.
      if (part.via.i64 == INT64_MIN)
        return "component " + std::to_string(i) + ": delete is out of range";
      out.emplace_back(part.via.i64);
      break;
    case msgpack::type::STR:
      out.emplace_back(std::string(part.via.str.ptr, part.via.str.size));
      break;
    default:
      return "component " + std::to_string(i) + ": components are integers or strings";
    }
    ++i;
  }
  return {};
}

ot::parse_result unpack_operation(const msgpack::object& value) {
  std::vector<ot::wire_component> wire;
  if (auto error = unpack_components(value, wire); !error.empty())
    return {std::nullopt, std::move(error)};
  return ot::parse(wire);
}

} // namespace troupe::protocol

// Fuzz target: protocol::decode_frame on arbitrary bytes, as a WebSocket frame's payload
// arrives from a client, with the default limits. Beyond not crashing (ASan, UBSan, no
// exception escaping), every result must be something the connection can act on.

#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "ot/text_operation.hpp"
#include "protocol/codec.hpp"
#include "protocol/operation_codec.hpp"
#include "protocol/string_sink.hpp"

using namespace troupe;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

/// A relayed value must be one complete MessagePack value, as the decoder promises.
void check_packed(std::string_view bytes, std::size_t max_size) {
  check(!bytes.empty() && bytes.size() <= max_size);
  std::size_t offset = 0;
  msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
  check(offset == bytes.size());
}

bool room_ok(const std::string& room) { return protocol::valid_room_name(room); }

/// `op` packed by `pack` and read back with protocol::unpack_operation.
template <class Pack>
ot::parse_result repacked(const ot::operation& op, Pack pack) {
  protocol::string_sink sink;
  protocol::string_packer pk(sink);
  pack(pk, op);
  const auto handle = msgpack::unpack(sink.bytes.data(), sink.bytes.size());
  return protocol::unpack_operation(handle.get());
}

/// The operation codec's round trips: the wire form keeps the components, the store's form
/// the trailing retain too.
void check_round_trips(const ot::operation& op) {
  const auto wire = repacked(op, [](auto& pk, const auto& o) { protocol::pack_operation(pk, o); });
  check(wire.op.has_value() && *wire.op == op);
  check(wire.op->base_length() == op.base_length() - op.trailing_retain());
  const auto row =
      repacked(op, [](auto& pk, const auto& o) { protocol::pack_operation_spanning(pk, o); });
  check(row.op.has_value() && *row.op == op && row.op->base_length() == op.base_length());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  const protocol::decode_limits limits;
  std::vector<protocol::decoded> out;
  protocol::decode_frame(frame, limits, out);

  // Each map needs at least one byte, and a non-empty frame yields at least one result.
  check(out.size() <= size);
  check(size == 0 || !out.empty());

  for (const auto& item : out) {
    if (const auto* error = std::get_if<protocol::decode_error>(&item)) {
      check(!error->reason.empty());
      continue;
    }
    std::visit(
        [&](const auto& request) {
          using T = std::decay_t<decltype(request)>;
          if constexpr (!std::is_same_v<T, protocol::typing_request>) check(request.id > 0);
          if constexpr (std::is_same_v<T, protocol::pub_request>) {
            check(room_ok(request.room));
            check_packed(request.data, limits.max_data);
          } else if constexpr (std::is_same_v<T, protocol::pset_request>) {
            check(room_ok(request.room));
            check_packed(request.state, limits.max_state);
          } else if constexpr (std::is_same_v<T, protocol::history_request>) {
            check(room_ok(request.room));
            check(request.limit >= 1 && request.limit <= protocol::max_history_limit);
          } else if constexpr (std::is_same_v<T, protocol::op_request>) {
            check(room_ok(request.room));
            // What the document actor does next with it.
            auto parsed = ot::parse(request.op);
            check(parsed.op.has_value() != !parsed.error.empty());
            if (parsed.op) check_round_trips(*parsed.op);
          } else if constexpr (std::is_same_v<T, protocol::rpc_request>) {
            check(protocol::valid_room_name(request.method) && request.method.size() <= 64);
          } else if constexpr (!std::is_same_v<T, protocol::connect_request> &&
                               !std::is_same_v<T, protocol::ping_request>) {
            check(room_ok(request.room));
          }
        },
        std::get<protocol::request>(item));
  }
  return 0;
}

#pragma once
// MessagePack codec: frames from clients to typed requests, and the server's replies and
// pushes to MessagePack maps. Pure functions: no I/O, no actors.

#include <cstdint>
#include <string_view>
#include <vector>

#include "ot/text_operation.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace troupe::protocol {

struct decode_limits {
  std::size_t max_data = 64 * 1024; ///< encoded size of a `pub`'s `data`
  std::size_t max_state = 1024;     ///< encoded size of a `pset`'s `state`
  std::size_t max_depth = 32;       ///< nesting of arrays and maps in one map
};

/// Decodes every map of one frame, in order, appending one result per map. A map that is
/// not a valid request becomes a decode_error; bytes that are not MessagePack end the frame
/// with one decode_error for the rest.
void decode_frame(std::string_view frame, const decode_limits& limits, std::vector<decoded>& out);

/// A room name: 1..128 bytes of A-Z a-z 0-9 _ - : . @
bool valid_room_name(std::string_view room) noexcept;

/// The contract's maximum for `history`'s `limit`, and the count `subscribed` returns when
/// it cannot recover.
inline constexpr std::uint32_t max_history_limit = 1000;
inline constexpr std::uint32_t resync_message_count = 100;

// ---- server to client: each appends one map to the builder ----------------------------

void encode_connected(frame_builder& out, request_id id, std::string_view client,
                      std::string_view user, std::uint32_t ping_seconds);

/// Encoded `msg` maps (stored_message payloads) as one MessagePack array.
std::string encode_array(const std::vector<std::string_view>& items);

// Replies that the presence actor completes: the room's log or document encodes the head,
// every field but `pseq` and `members` (counted in its map header already), and presence
// appends them with encode_members_tail().

/// `msgs` is encode_array() of the messages, oldest first.
std::string encode_subscribed_head(request_id id, std::string_view room, std::uint64_t seq,
                                   std::string_view epoch, bool recovered, std::string_view msgs);
/// `opened` with the document's text.
std::string encode_opened_head(request_id id, std::string_view room, std::uint64_t rev,
                               std::string_view epoch, std::string_view text);
/// `opened` with `recovered: true` and the missed operations: `ops` is an array of
/// encode_op_item() maps, built with encode_op_items().
std::string encode_opened_recovered_head(request_id id, std::string_view room, std::uint64_t rev,
                                         std::string_view epoch, std::string_view ops);
/// `members` is the encoded presence array.
void encode_members_tail(frame_builder& out, std::uint64_t pseq, std::string_view members);

/// One accepted operation as `opened.ops` lists it: {rev, op, user, key}.
struct op_item {
  std::uint64_t rev;
  const ot::operation* op;
  std::string_view user;
  std::string_view key;
};
std::string encode_op_items(const std::vector<op_item>& items);

/// The `op` push: an accepted operation, as transformed, for the document's other holders.
void encode_op(frame_builder& out, std::string_view room, const op_item& item);

/// A document's `ack`: the revision the operation got.
void encode_doc_ack(frame_builder& out, request_id id, std::string_view room, std::uint64_t rev);

void encode_closed(frame_builder& out, request_id id, std::string_view room);

/// `joins` and `leaves` are encoded presence entries.
void encode_pdiff(frame_builder& out, std::string_view room, std::uint64_t pseq,
                  const std::vector<std::string_view>& joins,
                  const std::vector<std::string>& leaves);

void encode_presence(frame_builder& out, request_id id, std::string_view room, std::uint64_t pseq,
                     std::string_view members);

void encode_typing(frame_builder& out, std::string_view room, std::string_view user,
                   std::string_view client, bool on);

void encode_unsubscribed(frame_builder& out, request_id id, std::string_view room);

void encode_ack(frame_builder& out, request_id id, std::string_view room, std::uint64_t seq);

/// The `msg` push; the same map is what history and recovery hand out later.
void encode_msg(frame_builder& out, std::string_view room, std::uint64_t seq, std::string_view user,
                std::string_view data, std::uint64_t ts_ms, std::string_view key);

void encode_history(frame_builder& out, request_id id, std::string_view room, std::uint64_t seq,
                    std::string_view epoch, const std::vector<std::string_view>& msgs);

void encode_pong(frame_builder& out, request_id id);

void encode_ok(frame_builder& out, request_id id);

/// `{t:"result", id, data}`: an `rpc`'s answer; `data` is MessagePack (empty: nil).
void encode_result(frame_builder& out, request_id id, std::string_view data);

/// `id` 0 leaves the id out (the failed map had none).
void encode_error(frame_builder& out, request_id id, error_code code, std::string_view reason);

void encode_disconnect(frame_builder& out, std::uint16_t code, std::string_view reason,
                       bool reconnect);

/// One-shot helpers for a single map.
template <class Encode>
frame_ptr make_frame(Encode&& encode) {
  frame_builder builder;
  encode(builder);
  return builder.finish();
}

} // namespace troupe::protocol

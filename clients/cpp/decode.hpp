// Frames to maps, maps to typed replies. Pure functions; a malformed map gives nullopt.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "clients/cpp/document_state.hpp"
#include "clients/cpp/reply.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/types.hpp"

namespace troupe::client {

// Splits a frame into its concatenated maps. Returns false (and what it could read before)
// if the frame holds something that is not MessagePack.
bool split_frame(std::string_view bytes, std::vector<reply>& out);

std::optional<message> parse_message(const reply& owner, const msgpack::object& m);
std::optional<std::vector<message>> parse_messages(const reply& owner, std::string_view key,
                                                   std::string_view room);
std::optional<subscribed_event> parse_subscribed(const reply& r);
std::optional<history_reply> parse_history(const reply& r);
std::optional<ack> parse_ack(const reply& r);
std::optional<connected_info> parse_connected(const reply& r);
error parse_error(const reply& r);
// `{rev, op, user, key}`: an `op` push or an item of a recovered `opened`.
std::optional<doc_op> parse_doc_op(const msgpack::object& o);

} // namespace troupe::client

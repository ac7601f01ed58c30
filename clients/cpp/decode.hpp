// Frames to maps, maps to typed replies. Pure functions; a malformed map gives nullopt.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "clients/cpp/reply.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/types.hpp"

namespace troupe::client {

// Splits a frame into its concatenated maps. Returns false (and what it could read before)
// if the frame holds something that is not MessagePack.
bool split_frame(std::string_view bytes, std::vector<Reply>& out);

std::optional<Message> parse_message(const Reply& owner, const msgpack::object& m);
std::optional<std::vector<Message>> parse_messages(const Reply& owner, std::string_view key,
                                                   std::string_view room);
std::optional<SubscribedEvent> parse_subscribed(const Reply& r);
std::optional<HistoryReply> parse_history(const Reply& r);
std::optional<Ack> parse_ack(const Reply& r);
std::optional<ConnectedInfo> parse_connected(const Reply& r);
Error parse_error(const Reply& r);

}  // namespace troupe::client

#include "actors/room_requests.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>

#include <atomic>
#include <memory>
#include <string_view>

#include "actors/messages.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace net = boost::asio;

namespace {

std::atomic<std::uint64_t> next_call{1};

constexpr std::size_t max_key = 256;

request_error unreadable() { return {"internal", "the room's reply cannot be read"}; }

/// A MessagePack value as bytes of its own.
std::string packed(const msgpack::object& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

std::string text(const msgpack::object& value) { return value.as<std::string>(); }

/// Calls `field(key, value)` for every entry of `map` whose key is a string.
template <class Field>
void each_field(const msgpack::object& map, Field&& field) {
  if (map.type != msgpack::type::MAP) throw msgpack::type_error();
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR)
      field(std::string_view(kv.key.via.str.ptr, kv.key.via.str.size), kv.val);
  }
}

published read_published(const msgpack::object& reply) {
  published out;
  each_field(reply, [&](std::string_view key, const msgpack::object& value) {
    if (key == "seq") out.seq = value.as<std::uint64_t>();
  });
  return out;
}

presence_snapshot read_presence(const msgpack::object& reply) {
  presence_snapshot out;
  each_field(reply, [&](std::string_view key, const msgpack::object& value) {
    if (key == "pseq") {
      out.pseq = value.as<std::uint64_t>();
    } else if (key == "members") {
      if (value.type != msgpack::type::ARRAY) throw msgpack::type_error();
      for (std::uint32_t i = 0; i < value.via.array.size; ++i) {
        presence_member member;
        each_field(value.via.array.ptr[i], [&](std::string_view k, const msgpack::object& v) {
          if (k == "client")
            member.client = text(v);
          else if (k == "user")
            member.user = text(v);
          else if (k == "name")
            member.name = text(v);
          else if (k == "info")
            member.info = packed(v);
          else if (k == "state")
            member.state = packed(v);
        });
        out.members.push_back(std::move(member));
      }
    }
  });
  return out;
}

history_page read_history(const msgpack::object& reply) {
  history_page out;
  each_field(reply, [&](std::string_view key, const msgpack::object& value) {
    if (key == "seq") {
      out.seq = value.as<std::uint64_t>();
    } else if (key == "epoch") {
      out.epoch = text(value);
    } else if (key == "msgs") {
      if (value.type != msgpack::type::ARRAY) throw msgpack::type_error();
      for (std::uint32_t i = 0; i < value.via.array.size; ++i) {
        history_message msg;
        each_field(value.via.array.ptr[i], [&](std::string_view k, const msgpack::object& v) {
          if (k == "room")
            msg.room = text(v);
          else if (k == "seq")
            msg.seq = v.as<std::uint64_t>();
          else if (k == "user")
            msg.user = text(v);
          else if (k == "data")
            msg.data = packed(v);
          else if (k == "ts")
            msg.ts = v.as<std::uint64_t>();
          else if (k == "key")
            msg.key = text(v);
        });
        out.msgs.push_back(std::move(msg));
      }
    }
  });
  return out;
}

/// One request to a room's actor: acquires the room through the directory, sends the
/// request with itself as the peer's sink, and answers once: with the reply, or when the
/// time is up. Lives until then.
template <class T>
class room_call final : public frame_sink, public std::enable_shared_from_this<room_call<T>> {
public:
  using read_fn = T (*)(const msgpack::object& reply);
  /// Sends the request to the room's actor; called on the directory's strand.
  using send_fn = std::function<void(const room_handles& room, peer_ref from)>;

  room_call(const connection_services& services, net::any_io_executor strand,
            room_requests::callback<T> done, read_fn read)
      : services_(services), strand_(std::move(strand)), timer_(strand_), done_(std::move(done)),
        read_(read) {}

  /// On the strand.
  void start(const std::string& room, std::string user, std::chrono::steady_clock::duration timeout,
             send_fn send) {
    timer_.expires_after(timeout);
    timer_.async_wait([self = this->shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->answer(request_error{"unavailable", "the room did not answer in time"});
    });
    peer_ref from;
    from.client = "api-" + std::to_string(next_call.fetch_add(1)); // never a room's member
    from.user = std::move(user);
    from.sink = this->shared_from_this();
    const auto directory = services_.directory;
    caf::anon_send(directory, acquire_atom::value, room,
                   room_reply{[directory, from = std::move(from), send = std::move(send)](
                                  const std::string& name, const room_handles& handles) mutable {
                     send(handles, std::move(from));
                     // The request is on its way: the room need not stay held for the reply.
                     caf::anon_send(directory, release_atom::value, name);
                   }});
  }

  /// The actor's reply: one MessagePack map. From the actor's thread.
  void send(protocol::frame_ptr frame) override {
    net::post(strand_, [self = this->shared_from_this(), frame = std::move(frame)] {
      self->on_reply(frame->payload());
    });
  }

private:
  void on_reply(std::string_view payload) {
    try {
      std::size_t offset = 0;
      const auto handle = msgpack::unpack(payload.data(), payload.size(), offset);
      if (offset != payload.size()) return answer(unreadable());
      const msgpack::object& reply = handle.get();
      std::string type;
      std::string code = "internal";
      std::string reason;
      each_field(reply, [&](std::string_view key, const msgpack::object& value) {
        if (key == "t")
          type = text(value);
        else if (key == "code")
          code = text(value);
        else if (key == "reason")
          reason = text(value);
      });
      if (type == "error") return answer(request_error{std::move(code), std::move(reason)});
      answer(read_(reply));
    } catch (const std::exception&) {
      answer(unreadable());
    }
  }

  void answer(request_result<T> result) {
    if (!done_) return; // answered already (the reply raced the timeout)
    timer_.cancel();
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  const connection_services& services_;
  net::any_io_executor strand_;
  net::steady_timer timer_;
  room_requests::callback<T> done_;
  read_fn read_;
};

/// Answers `done` with `result` on `strand`, never inline.
template <class T>
void answer_later(const net::any_io_executor& strand, room_requests::callback<T> done,
                  request_result<T> result) {
  net::post(strand, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

request_error bad_room() {
  return {"bad_request", "the room name must be 1..128 characters of A-Z a-z 0-9 _ - : . @"};
}

} // namespace

room_requests::room_requests(const connection_services& services, net::any_io_executor executor,
                             user_closer close_user, std::chrono::steady_clock::duration timeout)
    : services_(services), executor_(std::move(executor)), close_user_(std::move(close_user)),
      timeout_(timeout) {}

void room_requests::publish(std::string room, std::string data, std::optional<std::string> key,
                            std::string user, callback<published> done) const {
  if (!protocol::valid_room_name(room))
    return answer_later<published>(executor_, std::move(done), bad_room());
  if (key && key->size() > max_key)
    return answer_later<published>(
        executor_, std::move(done),
        request_error{"bad_request", "the key is longer than 256 bytes"});
  const auto max_data = services_.limits.max_data;
  if (data.size() > max_data)
    return answer_later<published>(executor_, std::move(done),
                                   request_error{"too_large", "'data' is larger than " +
                                                                  std::to_string(max_data) +
                                                                  " bytes as MessagePack"});
  if (user.empty()) user = default_user;
  protocol::pub_request pub{1, std::move(room), std::move(data), std::move(key)};
  auto call = std::make_shared<room_call<published>>(services_, executor_, std::move(done),
                                                     &read_published);
  const std::string name = pub.room; // `pub` moves into the action
  net::dispatch(executor_, [call, name, user = std::move(user), timeout = timeout_,
                            pub = std::move(pub)]() mutable {
    call->start(name, std::move(user), timeout,
                [pub = std::move(pub)](const room_handles& room, peer_ref from) mutable {
                  caf::anon_send(room.log, room_pub{std::move(from), std::move(pub)});
                });
  });
}

void room_requests::presence(std::string room, callback<presence_snapshot> done) const {
  if (!protocol::valid_room_name(room))
    return answer_later<presence_snapshot>(executor_, std::move(done), bad_room());
  protocol::presence_request get{1, std::move(room)};
  auto call = std::make_shared<room_call<presence_snapshot>>(services_, executor_, std::move(done),
                                                             &read_presence);
  const std::string name = get.room;
  net::dispatch(executor_, [call, name, timeout = timeout_, get = std::move(get)]() mutable {
    call->start(name, default_user, timeout,
                [get = std::move(get)](const room_handles& room, peer_ref from) mutable {
                  caf::anon_send(room.presence, presence_get{std::move(from), std::move(get)});
                });
  });
}

void room_requests::history(std::string room, std::uint64_t since, std::uint32_t limit,
                            callback<history_page> done) const {
  if (!protocol::valid_room_name(room))
    return answer_later<history_page>(executor_, std::move(done), bad_room());
  if (limit == 0 || limit > protocol::max_history_limit) limit = protocol::max_history_limit;
  protocol::history_request get{1, std::move(room), since, limit};
  auto call = std::make_shared<room_call<history_page>>(services_, executor_, std::move(done),
                                                        &read_history);
  const std::string name = get.room;
  net::dispatch(executor_, [call, name, timeout = timeout_, get = std::move(get)]() mutable {
    call->start(name, default_user, timeout,
                [get = std::move(get)](const room_handles& room, peer_ref from) mutable {
                  caf::anon_send(room.log, room_history{std::move(from), std::move(get)});
                });
  });
}

void room_requests::disconnect(std::string user, callback<disconnected> done) const {
  if (user.empty())
    return answer_later<disconnected>(executor_, std::move(done),
                                      request_error{"bad_request", "no user named"});
  if (!close_user_) return answer_later<disconnected>(executor_, std::move(done), disconnected{});
  close_user_(user, disconnect_code, "disconnected by the server", false,
              [executor = executor_, done = std::move(done)](request_result<disconnected> result) {
                answer_later<disconnected>(executor, std::move(done), std::move(result));
              });
}

} // namespace troupe::actors

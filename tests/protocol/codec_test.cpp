#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <variant>

#include "protocol/codec.hpp"

using namespace troupe::protocol;

namespace {

// A small writer for test maps: values are ints, strings, bools or nested maps.
struct value;
using entries = std::vector<std::pair<std::string, value>>;
struct value : std::variant<std::int64_t, std::string, bool, entries> {
  using variant::variant;
  value(int v) : variant(std::int64_t{v}) {}
  value(const char* v) : variant(std::string(v)) {}
};

void pack(msgpack::packer<msgpack::sbuffer>& pk, const value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, entries>) {
          pk.pack_map(static_cast<std::uint32_t>(x.size()));
          for (auto& [k, val] : x) {
            pk.pack(k);
            pack(pk, val);
          }
        } else
          pk.pack(x);
      },
      static_cast<const std::variant<std::int64_t, std::string, bool, entries>&>(v));
}

std::string encode(const entries& map) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pack(pk, value(map));
  return {buffer.data(), buffer.size()};
}

std::vector<decoded> decode(std::string_view bytes, decode_limits limits = {}) {
  std::vector<decoded> out;
  decode_frame(bytes, limits, out);
  return out;
}

template <class T>
T only_request(const std::vector<decoded>& out) {
  EXPECT_EQ(out.size(), 1u);
  const auto& item = out.at(0);
  if (!std::holds_alternative<request>(item)) {
    ADD_FAILURE() << "decode error: " << std::get<decode_error>(item).reason;
    return T{};
  }
  return std::get<T>(std::get<request>(item));
}

decode_error only_error(const std::vector<decoded>& out) {
  EXPECT_EQ(out.size(), 1u);
  return std::get<decode_error>(out.at(0));
}

msgpack::object_handle unpack_one(const frame_ptr& frame, std::size_t& offset) {
  auto payload = frame->payload();
  return msgpack::unpack(payload.data(), payload.size(), offset);
}

const msgpack::object* field(const msgpack::object& map, std::string_view key) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.as<std::string>() == key) return &kv.val;
  }
  return nullptr;
}

} // namespace

// ---- requests ----------------------------------------------------------------------------

TEST(Decode, Connect) {
  auto c = only_request<connect_request>(
      decode(encode({{"t", "connect"}, {"id", 1}, {"user", "ann"}, {"name", "Ann"}})));
  EXPECT_EQ(c.id, 1u);
  EXPECT_EQ(c.user, "ann");
  EXPECT_EQ(c.name, "Ann");
  EXPECT_FALSE(c.token);
}

TEST(Decode, SubWithAndWithoutSince) {
  auto plain =
      only_request<sub_request>(decode(encode({{"t", "sub"}, {"id", 2}, {"room", "lobby"}})));
  EXPECT_EQ(plain.room, "lobby");
  EXPECT_FALSE(plain.since);
  auto since =
      only_request<sub_request>(decode(encode({{"t", "sub"},
                                               {"id", 3},
                                               {"room", "team-42:x"},
                                               {"since", entries{{"seq", 17}, {"epoch", "ab"}}}})));
  ASSERT_TRUE(since.since);
  EXPECT_EQ(since.since->seq, 17u);
  EXPECT_EQ(since.since->epoch, "ab");
}

TEST(Decode, PubKeepsDataAsEncodedBytes) {
  entries data{{"text", "hello"}, {"n", 5}};
  auto pub = only_request<pub_request>(
      decode(encode({{"t", "pub"}, {"id", 4}, {"room", "r"}, {"data", data}, {"key", "k1"}})));
  EXPECT_EQ(pub.data, encode(data));
  EXPECT_EQ(pub.key, "k1");
}

TEST(Decode, HistoryLimitDefaultsAndClamps) {
  auto h = only_request<history_request>(
      decode(encode({{"t", "history"}, {"id", 5}, {"room", "r"}, {"since", 3}})));
  EXPECT_EQ(h.since, 3u);
  EXPECT_EQ(h.limit, max_history_limit);
  auto big = only_request<history_request>(
      decode(encode({{"t", "history"}, {"id", 5}, {"room", "r"}, {"since", 0}, {"limit", 50000}})));
  EXPECT_EQ(big.limit, max_history_limit);
}

TEST(Decode, UnknownKeysAreIgnored) {
  auto p = only_request<ping_request>(
      decode(encode({{"t", "ping"}, {"id", 9}, {"future", entries{{"x", 1}}}})));
  EXPECT_EQ(p.id, 9u);
}

TEST(Decode, SeveralMapsInOneFrame) {
  auto bytes = encode({{"t", "ping"}, {"id", 1}}) +
               encode({{"t", "unsub"}, {"id", 2}, {"room", "a"}}) +
               encode({{"t", "typing"}, {"room", "a"}, {"on", true}});
  auto out = decode(bytes);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<ping_request>(std::get<request>(out[0])));
  EXPECT_TRUE(std::holds_alternative<unsub_request>(std::get<request>(out[1])));
  EXPECT_TRUE(std::get<typing_request>(std::get<request>(out[2])).on);
}

/// An `op` request whose components `write_components` packs.
template <class Write>
std::string op_request_bytes(Write write_components) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(6);
  pk.pack(std::string("t"));
  pk.pack(std::string("op"));
  pk.pack(std::string("id"));
  pk.pack(1);
  pk.pack(std::string("room"));
  pk.pack(std::string("doc"));
  pk.pack(std::string("rev"));
  pk.pack(7);
  pk.pack(std::string("key"));
  pk.pack(std::string("k"));
  pk.pack(std::string("op"));
  write_components(pk);
  return {buffer.data(), buffer.size()};
}

TEST(Decode, OperationComponents) {
  auto op = only_request<op_request>(decode(op_request_bytes([](auto& pk) {
    pk.pack_array(3);
    pk.pack(3);
    pk.pack(std::string("héllo😀"));
    pk.pack(-2);
  })));
  ASSERT_EQ(op.op.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(op.op[0]), 3);
  EXPECT_EQ(std::get<std::string>(op.op[1]), "héllo😀");
  EXPECT_EQ(std::get<std::int64_t>(op.op[2]), -2);
}

// ---- malformed input ---------------------------------------------------------------------

TEST(DecodeMalformed, NotAMap) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, std::vector<int>{1, 2});
  auto e = only_error(decode({buffer.data(), buffer.size()}));
  EXPECT_EQ(e.code, error_code::bad_request);
  EXPECT_EQ(e.id, 0u);
}

TEST(DecodeMalformed, GarbageBytesEndTheFrame) {
  auto out = decode(encode({{"t", "ping"}, {"id", 1}}) + std::string("\xc1\xff\x00", 3));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<request>(out[0]));
  EXPECT_EQ(std::get<decode_error>(out[1]).code, error_code::bad_request);
}

TEST(DecodeMalformed, TruncatedMap) {
  auto bytes = encode({{"t", "pub"}, {"id", 1}, {"room", "r"}, {"data", "xxxxxxxx"}});
  bytes.resize(bytes.size() - 3);
  EXPECT_EQ(only_error(decode(bytes)).code, error_code::bad_request);
}

TEST(DecodeMalformed, MissingTypeOrUnknownType) {
  EXPECT_EQ(only_error(decode(encode({{"id", 1}}))).id, 1u);
  auto unknown = only_error(decode(encode({{"t", "frobnicate"}, {"id", 2}})));
  EXPECT_EQ(unknown.code, error_code::bad_request);
  EXPECT_EQ(unknown.id, 2u); // answered to the request that failed
  EXPECT_EQ(only_error(decode(encode({{"t", 5}, {"id", 3}}))).code, error_code::bad_request);
}

TEST(DecodeMalformed, MissingOrBadId) {
  EXPECT_EQ(only_error(decode(encode({{"t", "ping"}}))).code, error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "ping"}, {"id", 0}}))).code, error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "ping"}, {"id", -4}}))).code, error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "ping"}, {"id", "1"}}))).code, error_code::bad_request);
}

TEST(DecodeMalformed, WrongTypes) {
  EXPECT_EQ(only_error(decode(encode({{"t", "sub"}, {"id", 1}, {"room", 5}}))).id, 1u);
  EXPECT_EQ(only_error(decode(encode({{"t", "sub"}, {"id", 1}, {"room", "r"}, {"since", 5}}))).id,
            1u);
  EXPECT_EQ(only_error(decode(encode({{"t", "sub"},
                                      {"id", 1},
                                      {"room", "r"},
                                      {"since", entries{{"seq", "x"}, {"epoch", "e"}}}})))
                .id,
            1u);
  EXPECT_EQ(
      only_error(decode(encode({{"t", "history"}, {"id", 1}, {"room", "r"}, {"since", -1}}))).id,
      1u);
  EXPECT_EQ(
      only_error(
          decode(encode({{"t", "history"}, {"id", 1}, {"room", "r"}, {"since", 0}, {"limit", 0}})))
          .id,
      1u);
  EXPECT_EQ(only_error(decode(encode({{"t", "typing"}, {"room", "r"}, {"on", 1}}))).code,
            error_code::bad_request);
  EXPECT_EQ(
      only_error(decode(encode({{"t", "pset"}, {"id", 1}, {"room", "r"}, {"state", "busy"}}))).id,
      1u);
  EXPECT_EQ(only_error(decode(encode({{"t", "connect"}, {"id", 1}, {"user", 7}}))).id, 1u);
}

TEST(DecodeMalformed, MissingRequiredKeys) {
  EXPECT_EQ(only_error(decode(encode({{"t", "pub"}, {"id", 1}, {"room", "r"}}))).code,
            error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "sub"}, {"id", 1}}))).code, error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "history"}, {"id", 1}, {"room", "r"}}))).code,
            error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "op"}, {"id", 1}, {"room", "r"}, {"rev", 0}}))).code,
            error_code::bad_request);
}

TEST(DecodeMalformed, BadRoomNames) {
  for (const char* room : {"", "has space", "slash/room", "ü", "semi;colon"})
    EXPECT_EQ(only_error(decode(encode({{"t", "sub"}, {"id", 1}, {"room", room}}))).code,
              error_code::bad_request)
        << room;
  EXPECT_EQ(
      only_error(decode(encode({{"t", "sub"}, {"id", 1}, {"room", std::string(129, 'a')}}))).code,
      error_code::bad_request);
  EXPECT_TRUE(valid_room_name(std::string(128, 'a')));
  EXPECT_TRUE(valid_room_name("A-z_0:9.@x"));
}

TEST(DecodeMalformed, OversizedDataIsTooLarge) {
  decode_limits limits;
  limits.max_data = 100;
  auto e = only_error(decode(
      encode({{"t", "pub"}, {"id", 6}, {"room", "r"}, {"data", std::string(200, 'x')}}), limits));
  EXPECT_EQ(e.code, error_code::too_large);
  EXPECT_EQ(e.id, 6u);
  entries state{{"cursor", std::string(2000, 'c')}};
  EXPECT_EQ(
      only_error(decode(encode({{"t", "pset"}, {"id", 1}, {"room", "r"}, {"state", state}}))).code,
      error_code::too_large);
}

TEST(DecodeMalformed, DeepNestingIsRefused) {
  // A 4-entry map (fixmap 0x84) whose data is 100 nested single-element arrays.
  std::string bytes = encode({{"t", "pub"}, {"id", 1}, {"room", "r"}});
  bytes[0] = static_cast<char>(0x84);
  msgpack::sbuffer data;
  msgpack::packer<msgpack::sbuffer> pk(data);
  pk.pack(std::string("data"));
  for (int i = 0; i < 100; ++i)
    pk.pack_array(1);
  pk.pack(1);
  bytes.append(data.data(), data.size());
  auto e = only_error(decode(bytes));
  EXPECT_EQ(e.code, error_code::bad_request);
}

TEST(DecodeMalformed, HugeDeclaredSizesDoNotAllocate) {
  // An array32 header claiming 4 billion elements, and a str32 claiming 4 GiB: refused
  // before anything is allocated for them.
  for (std::string bytes :
       {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdb\xff\xff\xff\xff", 5),
        std::string("\xdf\xff\xff\xff\xff", 5)})
    EXPECT_EQ(only_error(decode(bytes)).code, error_code::bad_request);
}

TEST(DecodeMalformed, OperationWithBadComponents) {
  auto floating = op_request_bytes([](auto& pk) {
    pk.pack_array(1);
    pk.pack(1.5);
  });
  EXPECT_EQ(only_error(decode(floating)).code, error_code::bad_request);
  auto not_array = op_request_bytes([](auto& pk) { pk.pack(std::string("insert")); });
  EXPECT_EQ(only_error(decode(not_array)).code, error_code::bad_request);
}

// ---- replies and pushes ------------------------------------------------------------------

TEST(Encode, BatchedRepliesDecodeInOrder) {
  frame_builder out;
  encode_connected(out, 1, "c1", "ann", 25);
  encode_ack(out, 2, "lobby", 7);
  encode_error(out, 0, error_code::bad_request, "nope");
  auto frame = out.finish();
  std::size_t offset = 0;
  auto connected = unpack_one(frame, offset);
  EXPECT_EQ(field(connected.get(), "t")->as<std::string>(), "connected");
  EXPECT_EQ(field(connected.get(), "client")->as<std::string>(), "c1");
  EXPECT_EQ(field(connected.get(), "ping")->as<int>(), 25);
  auto ack = unpack_one(frame, offset);
  EXPECT_EQ(field(ack.get(), "seq")->as<int>(), 7);
  EXPECT_EQ(field(ack.get(), "room")->as<std::string>(), "lobby");
  auto error = unpack_one(frame, offset);
  EXPECT_EQ(field(error.get(), "code")->as<std::string>(), "bad_request");
  EXPECT_EQ(field(error.get(), "id"), nullptr); // no id to answer to
  EXPECT_EQ(offset, frame->payload().size());
}

TEST(Encode, MsgEmbedsDataVerbatimAndOmitsEmptyKey) {
  entries data{{"a", 1}};
  auto frame = make_frame(
      [&](frame_builder& out) { encode_msg(out, "r", 3, "bob", encode(data), 1234, ""); });
  std::size_t offset = 0;
  auto msg = unpack_one(frame, offset);
  EXPECT_EQ(field(msg.get(), "t")->as<std::string>(), "msg");
  EXPECT_EQ(field(msg.get(), "seq")->as<int>(), 3);
  EXPECT_EQ(field(msg.get(), "user")->as<std::string>(), "bob");
  EXPECT_EQ(field(msg.get(), "ts")->as<std::uint64_t>(), 1234u);
  EXPECT_EQ(field(*field(msg.get(), "data"), "a")->as<int>(), 1);
  EXPECT_EQ(field(msg.get(), "key"), nullptr);
}

TEST(Encode, SubscribedCarriesStoredMessagesAsMaps) {
  auto m1 = make_frame([&](frame_builder& out) {
    encode_msg(out, "r", 1, "u", encode({{"x", 1}}), 1, "k");
  });
  auto m2 = make_frame([&](frame_builder& out) {
    encode_msg(out, "r", 2, "u", encode({{"x", 2}}), 2, "");
  });
  auto frame = make_frame([&](frame_builder& out) {
    out.write(encode_subscribed_head(9, "r", 2, "ep", true,
                                     encode_array({m1->payload(), m2->payload()})));
    encode_members_tail(out, 0, std::string_view("\x90", 1));
  });
  std::size_t offset = 0;
  auto reply = unpack_one(frame, offset);
  EXPECT_TRUE(field(reply.get(), "recovered")->as<bool>());
  EXPECT_EQ(field(reply.get(), "epoch")->as<std::string>(), "ep");
  const auto& msgs = *field(reply.get(), "msgs");
  ASSERT_EQ(msgs.via.array.size, 2u);
  EXPECT_EQ(field(msgs.via.array.ptr[0], "key")->as<std::string>(), "k");
  EXPECT_EQ(field(msgs.via.array.ptr[1], "seq")->as<int>(), 2);
  EXPECT_EQ(field(reply.get(), "members")->via.array.size, 0u);
}

TEST(Encode, Disconnect) {
  auto frame =
      make_frame([](frame_builder& out) { encode_disconnect(out, 4500, "slow consumer", true); });
  std::size_t offset = 0;
  auto d = unpack_one(frame, offset);
  EXPECT_EQ(field(d.get(), "code")->as<int>(), 4500);
  EXPECT_TRUE(field(d.get(), "reconnect")->as<bool>());
}

// ---- rpc ---------------------------------------------------------------------------------

TEST(Decode, RpcWithAndWithoutData) {
  entries data{{"q", "x"}, {"n", 2}};
  auto with = only_request<rpc_request>(
      decode(encode({{"t", "rpc"}, {"id", 7}, {"method", "cart.add"}, {"data", data}})));
  EXPECT_EQ(with.id, 7u);
  EXPECT_EQ(with.method, "cart.add");
  EXPECT_EQ(with.data, encode(data)); // relayed as the client encoded it
  auto without =
      only_request<rpc_request>(decode(encode({{"t", "rpc"}, {"id", 8}, {"method", "m"}})));
  EXPECT_EQ(without.method, "m");
  EXPECT_TRUE(without.data.empty()); // nil
}

TEST(DecodeMalformed, RpcMethodAndData) {
  for (const std::string& method :
       {std::string(), std::string("a b"), std::string("a/b"), std::string(65, 'm')})
    EXPECT_EQ(only_error(decode(encode({{"t", "rpc"}, {"id", 1}, {"method", method}}))).code,
              error_code::bad_request)
        << method;
  EXPECT_EQ(only_request<rpc_request>(
                decode(encode({{"t", "rpc"}, {"id", 1}, {"method", std::string(64, 'm')}})))
                .method.size(),
            64u);
  EXPECT_EQ(only_error(decode(encode({{"t", "rpc"}, {"id", 1}}))).code, error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "rpc"}, {"id", 1}, {"method", 5}}))).code,
            error_code::bad_request);
  EXPECT_EQ(only_error(decode(encode({{"t", "rpc"}, {"method", "m"}}))).code,
            error_code::bad_request); // no id
  decode_limits limits;
  limits.max_data = 100;
  auto big = only_error(decode(
      encode({{"t", "rpc"}, {"id", 3}, {"method", "m"}, {"data", std::string(200, 'x')}}), limits));
  EXPECT_EQ(big.code, error_code::too_large);
  EXPECT_EQ(big.id, 3u);
}

TEST(Encode, ResultEmbedsDataOrNil) {
  entries data{{"ok", true}};
  auto frame = make_frame([&](frame_builder& out) {
    encode_result(out, 5, encode(data));
    encode_result(out, 6, "");
  });
  std::size_t offset = 0;
  auto with = unpack_one(frame, offset);
  EXPECT_EQ(field(with.get(), "t")->as<std::string>(), "result");
  EXPECT_EQ(field(with.get(), "id")->as<int>(), 5);
  EXPECT_TRUE(field(*field(with.get(), "data"), "ok")->as<bool>());
  auto nil = unpack_one(frame, offset);
  EXPECT_EQ(field(nil.get(), "id")->as<int>(), 6);
  ASSERT_NE(field(nil.get(), "data"), nullptr);
  EXPECT_TRUE(field(nil.get(), "data")->is_nil());
  EXPECT_EQ(offset, frame->payload().size());
}

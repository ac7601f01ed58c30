#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <cstdint>
#include <string>

#include "protocol/operation_codec.hpp"
#include "protocol/string_sink.hpp"

using namespace troupe;
using protocol::pack_operation;
using protocol::pack_operation_spanning;
using protocol::string_packer;
using protocol::string_sink;
using protocol::unpack_operation;

namespace {

template <class Pack>
std::string packed(Pack pack) {
  string_sink sink;
  string_packer pk(sink);
  pack(pk);
  return std::move(sink.bytes);
}

ot::parse_result unpack(const std::string& bytes) {
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  return unpack_operation(handle.get());
}

ot::parse_result round_trip(const ot::operation& op) {
  return unpack(packed([&](auto& pk) { pack_operation(pk, op); }));
}

} // namespace

TEST(OperationCodec, RoundTripsEveryKindOfComponent) {
  ot::operation op;
  op.retain(3).insert("héllo😀").remove(2).retain(1).insert("x");
  auto back = round_trip(op);
  ASSERT_TRUE(back.op) << back.error;
  EXPECT_EQ(*back.op, op);
  EXPECT_EQ(back.op->base_length(), op.base_length());
}

TEST(OperationCodec, PacksTheWireForm) {
  ot::operation op;
  op.retain(200).remove(70000).insert("ab");
  // What a client (or msgpack's own packing of int64 and strings) sends.
  const auto expected = packed([](auto& pk) {
    pk.pack_array(3);
    pk.pack_int64(200);
    pk.pack_int64(-70000);
    pk.pack(std::string("ab"));
  });
  EXPECT_EQ(packed([&](auto& pk) { pack_operation(pk, op); }), expected);
}

TEST(OperationCodec, LeavesTheTrailingRetainOutOnTheWire) {
  ot::operation op;
  op.retain(2).insert("a").retain(5);
  const auto bytes = packed([&](auto& pk) { pack_operation(pk, op); });
  auto object = msgpack::unpack(bytes.data(), bytes.size());
  ASSERT_EQ(object.get().type, msgpack::type::ARRAY);
  EXPECT_EQ(object.get().via.array.size, 2u);
  auto back = unpack(bytes);
  ASSERT_TRUE(back.op);
  EXPECT_EQ(*back.op, op);
  EXPECT_EQ(back.op->base_length(), 2u);
}

TEST(OperationCodec, TheSpanningFormKeepsTheTrailingRetain) {
  ot::operation op;
  op.retain(2).insert("a").retain(5);
  auto back = unpack(packed([&](auto& pk) { pack_operation_spanning(pk, op); }));
  ASSERT_TRUE(back.op) << back.error;
  EXPECT_EQ(*back.op, op);
  EXPECT_EQ(back.op->base_length(), 7u);
  EXPECT_FALSE(ot::fits(*back.op, 6));
  // Without one, both forms are the same bytes.
  ot::operation plain;
  plain.retain(1).remove(1);
  EXPECT_EQ(packed([&](auto& pk) { pack_operation_spanning(pk, plain); }),
            packed([&](auto& pk) { pack_operation(pk, plain); }));
}

TEST(OperationCodec, ATrailingRetainReadIsKeptForFits) {
  auto op = unpack(packed([](auto& pk) {
    pk.pack_array(2);
    pk.pack(std::string("a"));
    pk.pack(4);
  }));
  ASSERT_TRUE(op.op) << op.error;
  EXPECT_EQ(op.op->components().size(), 1u);
  EXPECT_EQ(op.op->base_length(), 4u);
  EXPECT_TRUE(ot::fits(*op.op, 4));
  EXPECT_FALSE(ot::fits(*op.op, 3));
}

TEST(OperationCodec, EmptyArraysAndZeroComponentsMeanNothing) {
  auto none = unpack(packed([](auto& pk) { pk.pack_array(0); }));
  ASSERT_TRUE(none.op) << none.error;
  EXPECT_TRUE(none.op->empty());
  EXPECT_EQ(packed([&](auto& pk) { pack_operation(pk, *none.op); }),
            packed([](auto& pk) { pk.pack_array(0); }));

  auto zeros = unpack(packed([](auto& pk) {
    pk.pack_array(3);
    pk.pack(0);
    pk.pack(std::string());
    pk.pack(0);
  }));
  ASSERT_TRUE(zeros.op) << zeros.error;
  EXPECT_TRUE(zeros.op->empty());
  EXPECT_EQ(zeros.op->base_length(), 0u);
}

TEST(OperationCodec, CountsOutsideInt64AreRefused) {
  auto min_delete = unpack(packed([](auto& pk) {
    pk.pack_array(1);
    pk.pack_int64(INT64_MIN);
  }));
  EXPECT_FALSE(min_delete.op);
  EXPECT_NE(min_delete.error.find("delete is out of range"), std::string::npos) << min_delete.error;

  auto huge_retain = unpack(packed([](auto& pk) {
    pk.pack_array(2);
    pk.pack(std::string("a"));
    pk.pack_uint64(std::uint64_t{INT64_MAX} + 1);
  }));
  EXPECT_FALSE(huge_retain.op);
  EXPECT_NE(huge_retain.error.find("component 1: retain is out of range"), std::string::npos)
      << huge_retain.error;
}

TEST(OperationCodec, SpansNoDocumentHoldsAreRefusedByParse) {
  for (std::int64_t n : {INT64_MAX, INT64_MIN + 1, std::int64_t{1} << 49}) {
    auto op = unpack(packed([&](auto& pk) {
      pk.pack_array(1);
      pk.pack_int64(n);
    }));
    EXPECT_FALSE(op.op) << n;
    EXPECT_NE(op.error.find("spans more code points"), std::string::npos) << op.error;
  }
}

TEST(OperationCodec, MalformedValuesSayWhy) {
  auto not_array = unpack(packed([](auto& pk) { pk.pack(std::string("insert")); }));
  EXPECT_FALSE(not_array.op);
  EXPECT_NE(not_array.error.find("must be an array"), std::string::npos) << not_array.error;

  for (int kind = 0; kind < 4; ++kind) {
    auto op = unpack(packed([&](auto& pk) {
      pk.pack_array(2);
      pk.pack(1);
      switch (kind) {
      case 0:
        pk.pack(1.5);
        break;
      case 1:
        pk.pack_nil();
        break;
      case 2:
        pk.pack_true();
        break;
      case 3:
        pk.pack_array(0);
        break;
      }
    }));
    EXPECT_FALSE(op.op) << kind;
    EXPECT_NE(op.error.find("component 1: components are integers or strings"), std::string::npos)
        << op.error;
  }

  auto bad_text = unpack(packed([](auto& pk) {
    pk.pack_array(1);
    pk.pack(std::string("a\xFF"));
  }));
  EXPECT_FALSE(bad_text.op);
  EXPECT_NE(bad_text.error.find("not valid UTF-8"), std::string::npos) << bad_text.error;
}

TEST(OperationCodec, UnpackComponentsKeepsThemAsSent) {
  const auto bytes = packed([](auto& pk) {
    pk.pack_array(4);
    pk.pack(0);
    pk.pack(std::string("\xFF"));
    pk.pack(-3);
    pk.pack(5);
  });
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  std::vector<ot::wire_component> wire;
  EXPECT_EQ(protocol::unpack_components(handle.get(), wire), "");
  ASSERT_EQ(wire.size(), 4u);
  EXPECT_EQ(std::get<std::int64_t>(wire[0]), 0);
  EXPECT_EQ(std::get<std::string>(wire[1]), "\xFF"); // UTF-8 is ot::parse's to check
  EXPECT_EQ(std::get<std::int64_t>(wire[2]), -3);
  EXPECT_EQ(std::get<std::int64_t>(wire[3]), 5);
}

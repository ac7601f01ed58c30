#include <gtest/gtest.h>

#include "protocol/frame.hpp"

using namespace troupe::protocol;

namespace {

frame_ptr frame_of_size(std::size_t payload) {
  frame_builder builder;
  builder.write(std::string(payload, 'x'));
  return builder.finish();
}

} // namespace

TEST(Frame, SmallPayloadHasTwoByteHeader) {
  auto frame = frame_of_size(125);
  auto wire = frame->wire();
  ASSERT_EQ(wire.size(), 127u);
  EXPECT_EQ(static_cast<unsigned char>(wire[0]), 0x82); // FIN + binary
  EXPECT_EQ(static_cast<unsigned char>(wire[1]), 125);  // unmasked, 7-bit length
  EXPECT_EQ(frame->payload(), std::string(125, 'x'));
}

TEST(Frame, MediumPayloadUses16BitLength) {
  auto frame = frame_of_size(126);
  auto wire = frame->wire();
  ASSERT_EQ(wire.size(), 126u + 4);
  EXPECT_EQ(static_cast<unsigned char>(wire[1]), 126);
  EXPECT_EQ(static_cast<unsigned char>(wire[2]), 0);
  EXPECT_EQ(static_cast<unsigned char>(wire[3]), 126);
  auto big = frame_of_size(65535)->wire();
  EXPECT_EQ(static_cast<unsigned char>(big[2]), 0xff);
  EXPECT_EQ(static_cast<unsigned char>(big[3]), 0xff);
}

TEST(Frame, LargePayloadUses64BitLength) {
  auto frame = frame_of_size(65536);
  auto wire = frame->wire();
  ASSERT_EQ(wire.size(), 65536u + 10);
  EXPECT_EQ(static_cast<unsigned char>(wire[1]), 127);
  std::uint64_t length = 0;
  for (int i = 2; i < 10; ++i)
    length = (length << 8) | static_cast<unsigned char>(wire[i]);
  EXPECT_EQ(length, 65536u);
}

TEST(Frame, BuilderIsReusableAfterFinish) {
  frame_builder builder;
  builder.write("ab", 2);
  auto first = builder.finish();
  EXPECT_TRUE(builder.empty());
  builder.write("cde", 3);
  auto second = builder.finish();
  EXPECT_EQ(first->payload(), "ab");
  EXPECT_EQ(second->payload(), "cde");
}

TEST(Frame, CloseFrameCarriesCodeAndClippedReason) {
  auto frame = make_close_frame(4500, std::string(300, 'r'));
  auto wire = frame->wire();
  EXPECT_EQ(static_cast<unsigned char>(wire[0]), 0x88);
  EXPECT_EQ(static_cast<unsigned char>(wire[1]), 125); // control frames carry <= 125 bytes
  EXPECT_EQ((static_cast<unsigned char>(wire[2]) << 8) | static_cast<unsigned char>(wire[3]), 4500);
}

TEST(Frame, PingFrameIsEmpty) {
  auto wire = make_ping_frame()->wire();
  ASSERT_EQ(wire.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(wire[0]), 0x89);
  EXPECT_EQ(static_cast<unsigned char>(wire[1]), 0);
}

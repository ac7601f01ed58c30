// transport::outbox on a real loopback socket pair: the test holds the reading end, and
// drives the outbox's io_context itself (poll) or on a thread, with bounded waits only.

#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

#include "protocol/codec.hpp"
#include "protocol/frame.hpp"
#include "transport/outbox.hpp"

using namespace troupe;
using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// One WebSocket frame as the peer reads it (server frames are unmasked).
struct ws_frame {
  int opcode = 0;
  std::string payload;
};

class OutboxTest : public ::testing::Test {
protected:
  /// A connected pair: `server` (for the outbox, on `strand_`) and `peer_` (the client,
  /// blocking reads bounded by a 5 s receive timeout).
  tcp::socket connect_pair() {
    tcp::acceptor acceptor(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    tcp::socket server(strand_);
    acceptor.accept(server);
    timeval timeout{5, 0};
    ::setsockopt(peer_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return server;
  }

  std::shared_ptr<transport::outbox> make_outbox(std::size_t limit) {
    return std::make_shared<transport::outbox>(connect_pair(), strand_, limit);
  }

  static protocol::frame_ptr data_frame(std::string_view text) {
    return protocol::make_frame([&](protocol::frame_builder& out) { out.write(text); });
  }

  /// Reads exactly `n` bytes from the peer, or fails (5 s receive timeout, or EOF).
  std::string read_bytes(std::size_t n) {
    std::string bytes(n, '\0');
    boost::system::error_code ec;
    net::read(peer_, net::buffer(bytes), ec);
    EXPECT_FALSE(ec) << "reading " << n << " bytes: " << ec.message();
    return bytes;
  }

  ws_frame read_frame() {
    const std::string head = read_bytes(2);
    ws_frame frame;
    frame.opcode = static_cast<unsigned char>(head[0]) & 0x0f;
    std::uint64_t size = static_cast<unsigned char>(head[1]) & 0x7f;
    int extra = size == 126 ? 2 : size == 127 ? 8 : 0;
    if (extra) {
      const std::string ext = read_bytes(extra);
      size = 0;
      for (unsigned char c : ext)
        size = size << 8 | c;
    }
    frame.payload = read_bytes(size);
    return frame;
  }

  /// True once the peer reads the end of the stream (bounded by the receive timeout).
  bool reads_eof() {
    char byte;
    boost::system::error_code ec;
    peer_.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof;
  }

  /// Runs what is ready now (a context that ran out of work needs its restart first).
  std::size_t poll() {
    io_.restart();
    return io_.poll();
  }
  void run_for(std::chrono::seconds bound) {
    io_.restart();
    io_.run_for(bound);
  }

  net::io_context io_;
  transport::strand_type strand_ = net::make_strand(io_);
  tcp::socket peer_{io_};
};

TEST_F(OutboxTest, FramesFromManySendsAreWrittenInOrderByOneFlush) {
  auto box = make_outbox(1 << 20);
  std::vector<std::string> sent;
  for (int i = 0; i < 100; ++i) {
    sent.push_back("frame " + std::to_string(i));
    box->send(data_frame(sent.back()));
  }
  EXPECT_GT(box->queued_bytes(), 0u);
  // Coalescing: the 100 sends posted one flush, which wrote them all.
  EXPECT_EQ(poll(), 1u) << "each send posted a flush of its own";
  EXPECT_EQ(box->queued_bytes(), 0u) << "the flush left frames unwritten";
  for (const auto& text : sent) {
    const auto frame = read_frame();
    EXPECT_EQ(frame.opcode, 2); // binary
    EXPECT_EQ(frame.payload, text);
  }
}

TEST_F(OutboxTest, UrgentFramesKeepTheirPlaceAfterWhatWasSentBefore) {
  auto box = make_outbox(1 << 20);
  box->send(data_frame("first"));
  bool written = false;
  net::post(strand_, [&] {
    box->send_urgent(
        protocol::make_close_frame(1000, "bye"),
        transport::write_completion([&](transport::error_code ec, std::size_t) { written = !ec; }));
  });
  poll();
  EXPECT_TRUE(written);
  EXPECT_EQ(read_frame().payload, "first");
  const auto close = read_frame();
  EXPECT_EQ(close.opcode, 8);
  ASSERT_GE(close.payload.size(), 2u);
  EXPECT_EQ((static_cast<unsigned char>(close.payload[0]) << 8) |
                static_cast<unsigned char>(close.payload[1]),
            1000);
}

TEST_F(OutboxTest, OneLargeFrameDoesNotTripTheLimitButWhatQueuesBehindItDoes) {
  auto box = make_outbox(1000);
  int overflows = 0;
  box->on_overflow([&] { ++overflows; });
  box->send(data_frame(std::string(5000, 'x'))); // alone: a history page, say
  poll();
  EXPECT_EQ(overflows, 0);
  EXPECT_EQ(read_frame().payload.size(), 5000u);
  // Without a flush between them, the queue grows past the limit at the fourth frame.
  for (int i = 0; i < 3; ++i)
    box->send(data_frame(std::string(400, 'a' + i)));
  EXPECT_EQ(overflows, 0);
  box->send(data_frame("over the limit"));
  box->send(data_frame("dropped too"));
  poll();
  EXPECT_EQ(overflows, 1) << "the owner was not told once";
}

TEST_F(OutboxTest, ASlowConsumerIsCutWith4500AfterItsQueueIsDropped) {
  auto box = make_outbox(1000);
  // What ws_session does: drop the queue, say why, close with 4500, then go.
  box->on_overflow([&] {
    box->discard_pending();
    box->send_urgent(protocol::make_frame([](protocol::frame_builder& out) {
      protocol::encode_disconnect(out, 4500, "slow consumer", true);
    }));
    box->send_urgent(protocol::make_close_frame(4500, "slow consumer"));
    box->close_gracefully(1s);
  });
  for (int i = 0; i < 6; ++i)
    box->send(data_frame(std::string(400, 'a' + i)));
  poll();
  box->send(data_frame("after the cut"));
  // The peer reads the disconnect, then the close frame with 4500, then the end: none of
  // the dropped frames, nothing after the close.
  std::thread runner([&] { run_for(5s); });
  const auto disconnect = read_frame();
  EXPECT_EQ(disconnect.opcode, 2);
  EXPECT_NE(disconnect.payload.find("disconnect"), std::string::npos);
  EXPECT_NE(disconnect.payload.find("slow consumer"), std::string::npos);
  const auto close = read_frame();
  EXPECT_EQ(close.opcode, 8);
  ASSERT_GE(close.payload.size(), 2u);
  EXPECT_EQ((static_cast<unsigned char>(close.payload[0]) << 8) |
                static_cast<unsigned char>(close.payload[1]),
            4500);
  EXPECT_TRUE(reads_eof()) << "more came after the close frame";
  peer_.close();
  io_.stop();
  runner.join();
}

TEST_F(OutboxTest, APeerThatDoesNotReadGetsEverythingInOrderOnceItDoes) {
  auto box = make_outbox(64 << 20);
  // Far more than the socket buffers hold: the outbox must wait for writability.
  const std::string chunk(64 * 1024, 'z');
  constexpr int count = 200; // 12.8 MB
  for (int i = 0; i < count; ++i)
    box->send(data_frame(std::to_string(i) + ":" + chunk));
  std::promise<transport::error_code> drained;
  std::thread runner([&] {
    net::post(strand_, [&] {
      box->when_drained(transport::write_completion(
          [&](transport::error_code ec, std::size_t) { drained.set_value(ec); }));
    });
    run_for(20s);
  });
  for (int i = 0; i < count; ++i) {
    const auto frame = read_frame();
    ASSERT_EQ(frame.payload.substr(0, frame.payload.find(':')), std::to_string(i));
    ASSERT_EQ(frame.payload.size(), std::to_string(i).size() + 1 + chunk.size());
  }
  auto drained_future = drained.get_future();
  ASSERT_EQ(drained_future.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(drained_future.get());
  EXPECT_EQ(box->queued_bytes(), 0u);
  io_.stop();
  runner.join();
}

} // namespace

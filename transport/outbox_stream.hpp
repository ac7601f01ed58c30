#pragma once
// The layer under Beast's websocket::stream: reads come straight from the socket (through
// the TLS stream on a TLS connection), writes (Beast's handshake reply, pongs, close
// frames) go through the connection's outbox, in order with the frames the engine queues
// there itself.

#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <chrono>
#include <memory>

#include "transport/outbox.hpp"
#include "transport/tls_stream.hpp"

namespace troupe::transport {

class outbox_stream {
public:
  using executor_type = strand_type;
  using clock = std::chrono::steady_clock;

  /// How long a closed connection may take to acknowledge our end of it.
  static constexpr std::chrono::seconds teardown_bound{5};

  explicit outbox_stream(std::shared_ptr<outbox> box) : box_(std::move(box)) {}

  executor_type get_executor() const noexcept { return box_->strand(); }
  outbox& box() noexcept { return *box_; }
  const std::shared_ptr<outbox>& shared_box() const noexcept { return box_; }

  /// When bytes last arrived from the peer: any frame, pong or fragment counts as life.
  clock::time_point last_read() const noexcept { return last_read_; }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto completion, const MutableBuffers& into) {
          auto done = [this, completion = std::move(completion)](error_code ec,
                                                                 std::size_t n) mutable {
            if (n > 0) last_read_ = clock::now();
            std::move(completion)(ec, n);
          };
          if (auto* tls = box_->tls())
            tls->async_read_some(into, std::move(done));
          else
            box_->socket().async_read_some(into, std::move(done));
        },
        handler, buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto completion, const ConstBuffers& from) {
          // Beast writes rarely (handshake, pong, close): a copy into a frame of its own.
          std::string bytes;
          for (auto it = net::buffer_sequence_begin(from); it != net::buffer_sequence_end(from);
               ++it) {
            net::const_buffer b = *it;
            bytes.append(static_cast<const char*>(b.data()), b.size());
          }
          box_->send_urgent(protocol::wire_frame::raw(std::move(bytes)),
                            write_completion(std::move(completion)));
        },
        handler, buffers);
  }

private:
  std::shared_ptr<outbox> box_;
  clock::time_point last_read_ = clock::now();
};

/// Beast's teardown after a close handshake or a failure: the outbox drains, then closes
/// gracefully.
void teardown(boost::beast::role_type, outbox_stream& stream, error_code& ec);

template <class Handler>
void async_teardown(boost::beast::role_type, outbox_stream& stream, Handler&& handler) {
  stream.box().close_gracefully(
      outbox_stream::teardown_bound,
      write_completion([handler = std::forward<Handler>(handler)](error_code, std::size_t) mutable {
        std::move(handler)(error_code{});
      }));
}

/// What Beast calls to abort the connection (timeouts, failures).
void beast_close_socket(outbox_stream& stream);

} // namespace troupe::transport

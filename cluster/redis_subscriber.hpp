#pragma once
// The pub/sub connection to Redis: a link of its own (a subscribed connection takes no other
// commands), on a strand of its own.
//
// Subscriptions are reference counted: subscribe() and unsubscribe() pair up, the channel is
// SUBSCRIBEd on the first and UNSUBSCRIBEd on the last; an unsubscribe() of a channel not
// subscribed does nothing. They are wishes kept across links: after a reconnection every
// channel is subscribed again and `resubscribed` is reported once all are confirmed, so the
// rooms above know that messages published meanwhile were missed and must be read from the
// streams.
//
// While the link is down, messages published are lost for this node (pub/sub keeps nothing);
// the link is watched by EOF, TCP keepalive, and the connect and confirmation timeouts.
// Every callback runs on the strand, in the order Redis sent things; after the destructor
// starts, no callback starts any more.

#include <utility> // before Boost 1.74's Asio
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include "cluster/redis_types.hpp"
#include "cluster/redis_url.hpp"

namespace troupe::cluster {

class redis_subscriber {
public:
  enum class event {
    up,           ///< first link up, every channel asked so far confirmed
    down,         ///< the link broke (or the first attempt failed): messages are being missed
    resubscribed, ///< up again after a down, every channel confirmed again: repair the gaps
  };
  /// The views are valid during the call only.
  using message_handler = std::function<void(std::string_view channel, std::string_view payload)>;
  using event_handler = std::function<void(event e, std::string_view reason)>;
  /// Empty error: Redis confirmed the subscription; messages published from now on arrive.
  /// redis_errc::not_connected / link_lost: not live now, it will be on the next link (and
  /// `resubscribed` says so); redis_errc::closed: unsubscribed or closed before confirmation.
  using subscribed_handler = std::function<void(std::error_code ec)>;

  redis_subscriber(const boost::asio::any_io_executor& executor, redis_url url,
                   redis_options options = {});
  ~redis_subscriber();
  redis_subscriber(const redis_subscriber&) = delete;
  redis_subscriber& operator=(const redis_subscriber&) = delete;

  /// Set before start().
  void on_message(message_handler handler);
  void on_event(event_handler handler);
  /// Starts connecting (and reconnecting, until close()).
  void start();
  /// Ends the link for good; pending confirmations complete with redis_errc::closed.
  void close();

  /// Whether the link is up with every channel confirmed (any thread; a hint).
  bool is_up() const noexcept;

  /// Any thread. `done` (optional) hears when the subscription is live or why it is not.
  void subscribe(std::string channel, subscribed_handler done = {});
  /// Any thread.
  void unsubscribe(std::string channel);

  /// The strand every callback runs on.
  boost::asio::strand<boost::asio::any_io_executor> executor() const;

private:
  class impl;
  std::shared_ptr<impl> impl_;
};

} // namespace troupe::cluster

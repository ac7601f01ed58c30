#pragma once
// One asynchronous command connection to Redis, on a strand of its own.
//
// - Fail fast: a command asked while the link is down completes at once (posted, never inside
//   the call) with redis_errc::not_connected; nothing is queued for later, so a caller can
//   answer `unavailable` instead of waiting.
// - Bounded: a command with no reply within options.command_timeout completes with
//   redis_errc::timeout and the link is broken (commands behind it get link_lost).
// - Reconnects by itself with backoff and jitter (redis_options), and says when it goes up or
//   down.
// - Every callback runs on the strand, in the order of the replies, never inside the call that
//   asked. After the destructor starts, no callback starts any more.

#include <utility> // before Boost 1.74's Asio
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include "cluster/redis_types.hpp"
#include "cluster/redis_url.hpp"

namespace troupe::cluster {

enum class link_state { up, down };

class redis_connection {
public:
  /// `ec` set: no reply (see redis_errc). Otherwise `reply` is Redis's, an error reply included.
  using reply_handler = std::function<void(std::error_code ec, redis_reply reply)>;
  /// Transitions only: `up` when connected (AUTH, SELECT done); `down` with a reason when the
  /// link breaks or the first attempt fails. Repeated failed attempts are not reported again.
  using state_handler = std::function<void(link_state state, std::string_view reason)>;

  redis_connection(const boost::asio::any_io_executor& executor, redis_url url,
                   redis_options options = {});
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Set before start().
  void on_state(state_handler handler);
  /// Starts connecting (and reconnecting, until close()).
  void start();
  /// Ends the link for good: commands in flight and later ones complete with redis_errc::closed;
  /// no state is reported any more.
  void close();

  /// Whether the link is up now (any thread; a hint, the command's result is the answer).
  bool is_up() const noexcept;

  /// Sends one command: argv[0] is its name, every argument any bytes. SUBSCRIBE, MONITOR and
  /// the like are refused (redis_errc::invalid_command): they belong to redis_subscriber.
  /// Any thread.
  void command(std::vector<std::string> argv, reply_handler handler);

  /// EVALSHA of the script's SHA1; on a NOSCRIPT error, SCRIPT LOAD and EVALSHA again, once
  /// (pipelined: no extra round trip). Any thread.
  void eval_script(const redis_script& script, std::vector<std::string> keys,
                   std::vector<std::string> args, reply_handler handler);

  /// The strand every callback runs on.
  boost::asio::strand<boost::asio::any_io_executor> executor() const;

private:
  class impl;
  std::shared_ptr<impl> impl_;
};

} // namespace troupe::cluster

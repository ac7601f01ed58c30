#pragma once
// The transport side of a connection, as the connection actor sees it.

#include <utility>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <string_view>

namespace troupe::actors {

class peer {
public:
  virtual ~peer() = default;

  /// Sends `{t:"disconnect", code, reason, reconnect}`, then closes the WebSocket with
  /// `code`. Later calls do nothing.
  virtual void close(std::uint16_t code, std::string_view reason, bool reconnect) = 0;

  /// The connection's strand, where its actor runs.
  virtual boost::asio::any_io_executor executor() const = 0;
};

} // namespace troupe::actors

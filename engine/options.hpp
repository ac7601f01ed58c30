#pragma once
// The engine's options: command line first, then TROUPE_<NAME> environment variables.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace troupe::engine {

struct options {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::uint32_t ping = 25;           ///< seconds
  double grace = 3;                  ///< seconds a vanished connection stays in presence
  std::size_t history = 1000;        ///< messages kept per room
  std::size_t doc_log = 1000;        ///< operations kept per document
  std::size_t max_frame = 1 << 20;   ///< bytes
  std::size_t max_data = 64 << 10;   ///< bytes of a message's encoded `data`
  std::size_t queue_limit = 1 << 20; ///< bytes queued per connection before 4500
  std::uint32_t room_idle = 60;      ///< seconds a room no one holds stays in memory
  unsigned threads = 0;              ///< I/O threads; 0: one per core
  std::string web;                   ///< static files at /; empty: the bundled demo
};

/// Parses the command line and the environment. Returns nothing when it printed help;
/// throws std::runtime_error with a message for unknown or malformed options.
std::optional<options> parse_options(int argc, const char* const* argv, std::ostream& help_out);

} // namespace troupe::engine

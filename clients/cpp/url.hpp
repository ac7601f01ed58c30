// ws://host[:port][/path] (wss is not supported by this client yet).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace troupe::client {

struct parsed_url {
  std::string host;
  std::string port = "80";
  std::string target = "/"; // path and query

  static std::optional<parsed_url> parse(std::string_view text);
  std::string host_header() const;
};

} // namespace troupe::client

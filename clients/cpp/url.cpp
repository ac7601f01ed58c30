#include "clients/cpp/url.hpp"

#include <cctype>

namespace troupe::client {

std::optional<parsed_url> parsed_url::parse(std::string_view text) {
  constexpr std::string_view scheme = "ws://";
  if (text.substr(0, scheme.size()) != scheme) return std::nullopt;
  text.remove_prefix(scheme.size());
  parsed_url u;
  auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) u.target = std::string(text.substr(slash));
  if (authority.empty()) return std::nullopt;
  if (authority.front() == '[') { // [v6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return std::nullopt;
      u.port = std::string(authority.substr(1));
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty() || u.port.empty()) return std::nullopt;
  for (char c : u.port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  return u;
}

std::string parsed_url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != "80") h += ":" + port;
  return h;
}

} // namespace troupe::client

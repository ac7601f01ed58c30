#include "cluster/redis_url.hpp"

#include <charconv>
#include <stdexcept>

namespace troupe::cluster {

namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw std::invalid_argument("bad Redis URL '" + std::string(text) + "': " + why);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Userinfo is percent-decoded so that a password may hold '@', ':' or '/'.
std::string percent_decode(std::string_view in, std::string_view text) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    int hi = i + 2 < in.size() ? hex_digit(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? hex_digit(in[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      bad(text, "a '%' in the user or password is not followed by two hex digits");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

template <class Int>
bool parse_number(std::string_view digits, Int& out) {
  if (digits.empty()) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc{} && end == digits.data() + digits.size();
}

} // namespace

redis_url parse_redis_url(std::string_view text) {
  constexpr std::string_view scheme = "redis://";
  if (text.starts_with("rediss://")) bad(text, "TLS (rediss://) is not supported");
  if (!text.starts_with(scheme)) bad(text, "it must start with redis://");
  std::string_view rest = text.substr(scheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos)
    bad(text, "query strings and fragments are not supported");

  redis_url url;
  // The path: an optional /db.
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !parse_number(db, url.db))
      bad(text, "the database after '/' must be a number, got '" + std::string(db) + "'");
  }
  // Userinfo: everything before the last '@' (a raw '@' in a password would be ambiguous
  // anyway; the last one is what other Redis clients take too).
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos)
      bad(text, "the part before '@' must be ':password' or 'user:password'");
    url.username = percent_decode(info.substr(0, colon), text);
    url.password = percent_decode(info.substr(colon + 1), text);
    if (url.password.empty()) bad(text, "the password before '@' is empty");
  }
  // Host and port; an IPv6 host is bracketed.
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad(text, "'[' without ']' around an IPv6 host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad(text, "unexpected text after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) bad(text, "':' without a port");
    }
  } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) bad(text, "':' without a port");
  }
  if (host.empty()) bad(text, "no host");
  url.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    if (!parse_number(port, value) || value == 0 || value > 65535)
      bad(text, "the port must be a number from 1 to 65535, got '" + std::string(port) + "'");
    url.port = static_cast<std::uint16_t>(value);
  }
  return url;
}

std::string redis_url::redacted() const {
  std::string out = "redis://";
  if (!password.empty()) out += username + ":***@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

} // namespace troupe::cluster

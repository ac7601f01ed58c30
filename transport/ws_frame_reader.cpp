#include "transport/ws_frame_reader.hpp"

#include <cstring>

namespace troupe::transport {

void ws_frame_reader::unmask(char* data, std::size_t size, const unsigned char* key) noexcept {
  unsigned char key8[8];
  for (int i = 0; i < 8; ++i)
    key8[i] = key[i & 3];
  std::uint64_t mask;
  std::memcpy(&mask, key8, 8);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    word ^= mask;
    std::memcpy(data + i, &word, 8);
  }
  for (; i < size; ++i)
    data[i] = static_cast<char>(data[i] ^ key[i & 3]);
}

void ws_frame_reader::close_event(std::string_view payload, event& out) noexcept {
  out.kind = event_kind::close;
  if (payload.empty()) {
    out.code = 1005; // no status code
    return;
  }
  if (payload.size() == 1) {
    out = event{event_kind::error, 1002, "a close frame of one byte"};
    return;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  const std::uint16_t code = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
  // RFC 6455 §7.4: what a peer may send (1004–1006 and 1015 are never on the wire).
  const bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                     (code >= 3000 && code <= 4999);
  if (!valid) {
    out = event{event_kind::error, 1002, "invalid close code"};
    return;
  }
  out.code = code;
  out.payload = payload.substr(2);
}

} // namespace troupe::transport

#include "protocol/frame.hpp"

#include <algorithm>

namespace troupe::protocol {

namespace {

constexpr unsigned char opcode_binary = 0x2;
constexpr unsigned char opcode_close = 0x8;
constexpr unsigned char opcode_ping = 0x9;
constexpr unsigned char fin = 0x80;

} // namespace

// RFC 6455 §5.2: 7-bit length, or 126 + 16-bit, or 127 + 64-bit, in network order.
wire_frame::wire_frame(std::string bytes, unsigned char opcode) : bytes_(std::move(bytes)) {
  const std::uint64_t length = bytes_.size() - max_header_size;
  unsigned char header[max_header_size];
  std::size_t size = 0;
  header[size++] = fin | opcode;
  if (length < 126) {
    header[size++] = static_cast<unsigned char>(length);
  } else if (length <= 0xffff) {
    header[size++] = 126;
    header[size++] = static_cast<unsigned char>(length >> 8);
    header[size++] = static_cast<unsigned char>(length);
  } else {
    header[size++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8)
      header[size++] = static_cast<unsigned char>(length >> shift);
  }
  header_offset_ = static_cast<std::uint8_t>(max_header_size - size);
  std::copy(header, header + size, bytes_.begin() + header_offset_);
}

frame_ptr wire_frame::raw(std::string wire_bytes) {
  std::shared_ptr<wire_frame> frame(new wire_frame());
  frame->bytes_ = std::move(wire_bytes);
  return frame;
}

frame_ptr frame_builder::finish() {
  auto frame = std::make_shared<const wire_frame>(std::move(bytes_), opcode_binary);
  clear();
  return frame;
}

frame_ptr make_close_frame(std::uint16_t code, std::string_view reason) {
  // Control frames carry at most 125 bytes: 2 for the code, the rest for the reason.
  reason = reason.substr(0, std::min<std::size_t>(reason.size(), 123));
  std::string bytes(wire_frame::max_header_size, '\0');
  bytes.push_back(static_cast<char>(code >> 8));
  bytes.push_back(static_cast<char>(code & 0xff));
  bytes.append(reason);
  return std::make_shared<const wire_frame>(std::move(bytes), opcode_close);
}

frame_ptr make_ping_frame() {
  return std::make_shared<const wire_frame>(std::string(wire_frame::max_header_size, '\0'),
                                            opcode_ping);
}

} // namespace troupe::protocol

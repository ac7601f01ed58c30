#pragma once
// A complete WebSocket binary frame, built once and shared read-only by every receiver.
//
// Server-to-client frames are unmasked (RFC 6455 §5.1), so the same bytes, header
// included, serve every subscriber: a broadcast is encoded and framed exactly once and the
// transport writes these bytes straight to each socket.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace troupe::protocol {

class wire_frame {
public:
  /// Takes `bytes` whose first max_header_size bytes are reserved, and writes the header
  /// (FIN, `opcode`, unmasked length) into the end of that reserved room.
  wire_frame(std::string bytes, unsigned char opcode);

  /// Bytes that are already on-the-wire frames (Beast's own control frames and replies).
  static std::shared_ptr<const wire_frame> raw(std::string wire_bytes);

  /// The bytes to put on the socket: header and payload.
  std::string_view wire() const noexcept { return std::string_view(bytes_).substr(header_offset_); }
  /// The MessagePack maps carried by the frame.
  std::string_view payload() const noexcept {
    return std::string_view(bytes_).substr(max_header_size);
  }
  std::size_t size() const noexcept { return bytes_.size() - header_offset_; }

  /// Room reserved in front of the payload: 2 + 8 bytes for a 64-bit length.
  static constexpr std::size_t max_header_size = 10;

private:
  wire_frame() = default;
  std::string bytes_; // [unused][header][payload]
  std::uint8_t header_offset_ = 0;
};

using frame_ptr = std::shared_ptr<const wire_frame>;

/// Accumulates MessagePack maps (it is msgpack's write sink) and seals them into one
/// binary frame. Several maps in one frame is how the server batches.
class frame_builder {
public:
  frame_builder() { clear(); }

  /// msgpack::packer's sink interface.
  void write(const char* data, std::size_t size) { bytes_.append(data, size); }
  void write(std::string_view bytes) { bytes_.append(bytes); }

  bool empty() const noexcept { return bytes_.size() == wire_frame::max_header_size; }
  std::size_t payload_size() const noexcept { return bytes_.size() - wire_frame::max_header_size; }

  /// Writes the frame header in front of the payload and hands the frame out; the builder
  /// is empty again afterwards.
  frame_ptr finish();

  void clear() { bytes_.assign(wire_frame::max_header_size, '\0'); }

private:
  std::string bytes_;
};

/// A close frame with a status code and reason (RFC 6455 §5.5.1), for the transport.
frame_ptr make_close_frame(std::uint16_t code, std::string_view reason);
/// An empty ping frame: the engine's keep-alive.
frame_ptr make_ping_frame();

} // namespace troupe::protocol

#pragma once
// The server's side of RFC 6455 framing for incoming bytes: a parser that works in place
// on a buffer the caller owns (the I/O thread's read buffer), unmasks client frames there,
// reassembles fragmented messages, and keeps only what an idle connection must keep: the
// bytes of a frame that has not fully arrived yet, and the payload of a fragmented message
// still in progress. Both are empty (no capacity) between messages.
//
// Nothing here does I/O: ws_session reads, feeds the bytes, and acts on the events.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::transport {

class ws_frame_reader {
public:
  enum class event_kind : std::uint8_t {
    binary, ///< a complete binary message: `payload`
    text,   ///< a complete text message (the engine refuses them: 1003)
    ping,   ///< `payload` is to be echoed in a pong
    pong,
    close, ///< the peer's close frame: `code` (1005: none) and `payload` (the reason)
    error, ///< a protocol violation: close with `code` (1002, 1009), `payload` says why
  };
  struct event {
    event_kind kind;
    std::uint16_t code = 0;
    std::string_view payload;
  };

  /// Messages (all fragments together) over `max_message` bytes are an error (1009).
  explicit ws_frame_reader(std::size_t max_message) : max_message_(max_message) {}

  /// Parses `data` (which it may modify: unmasking is done in place) after what is kept
  /// from before, calling `on_event(const event&)` for each complete message or control
  /// frame; `on_event` returns false to stop (the connection is closing). Returns false
  /// once an error event was delivered or `on_event` stopped: the stream is then unusable.
  template <class Handler>
  bool feed(char* data, std::size_t size, Handler&& on_event);

  /// Bytes allocated between reads (for tests): the partial frame and a partial message.
  std::size_t held() const noexcept { return allocated(partial_) + allocated(message_); }

  /// Parses complete frames from the start of [data, data + size); returns how many bytes
  /// were consumed (the rest is one incomplete frame, `needed` its full size when known,
  /// else 0). `failed` is set on a protocol error or a stop.
  template <class Handler>
  std::size_t parse(char* data, std::size_t size, Handler& on_event, bool& failed,
                    std::size_t& needed);

private:
  /// XORs `size` bytes with the 4-byte `key`, in place.
  static void unmask(char* data, std::size_t size, const unsigned char* key) noexcept;
  /// Checks a close frame's payload; fills `out` (close or error).
  static void close_event(std::string_view payload, event& out) noexcept;
  static void release(std::string& s) noexcept { std::string().swap(s); }
  static std::size_t allocated(const std::string& s) noexcept {
    const std::size_t inline_capacity = std::string().capacity();
    return s.capacity() > inline_capacity ? s.capacity() : 0;
  }

  std::string partial_;             ///< an incomplete frame, as received (still masked)
  std::string message_;             ///< the unmasked payload of a fragmented message so far
  std::uint8_t message_opcode_ = 0; ///< 1 or 2 while a fragmented message is in progress
  std::size_t max_message_;
};

template <class Handler>
bool ws_frame_reader::feed(char* data, std::size_t size, Handler&& on_event) {
  bool failed = false;
  std::size_t needed = 0;
  if (partial_.empty()) {
    const std::size_t used = parse(data, size, on_event, failed, needed);
    if (failed) return false;
    if (used < size) {
      if (needed > size - used) partial_.reserve(needed);
      partial_.assign(data + used, size - used);
    }
    return true;
  }
  partial_.append(data, size);
  const std::size_t used = parse(partial_.data(), partial_.size(), on_event, failed, needed);
  if (failed) return false;
  if (used == partial_.size()) {
    release(partial_);
  } else if (used > 0) {
    partial_.erase(0, used);
    if (needed > partial_.capacity()) partial_.reserve(needed);
  } else if (needed > partial_.capacity()) {
    partial_.reserve(needed);
  }
  return true;
}

template <class Handler>
std::size_t ws_frame_reader::parse(char* data, std::size_t size, Handler& on_event, bool& failed,
                                   std::size_t& needed) {
  const auto fail = [&](std::uint16_t code, std::string_view why) {
    failed = true;
    release(partial_);
    release(message_);
    on_event(event{event_kind::error, code, why});
  };
  std::size_t at = 0;
  for (;;) {
    needed = 0;
    const std::size_t left = size - at;
    if (left < 2) return at;
    const auto* p = reinterpret_cast<const unsigned char*>(data + at);
    const bool fin = (p[0] & 0x80) != 0;
    const unsigned opcode = p[0] & 0x0f;
    if ((p[0] & 0x70) != 0) return fail(1002, "reserved bits set"), at;
    if ((p[1] & 0x80) == 0) return fail(1002, "client frames must be masked"), at;
    const bool control = (opcode & 0x08) != 0;
    if (opcode != 0 && opcode != 1 && opcode != 2 && opcode != 8 && opcode != 9 && opcode != 10)
      return fail(1002, "unknown opcode"), at;
    std::uint64_t length = p[1] & 0x7f;
    std::size_t header = 2;
    if (control && (!fin || length > 125))
      return fail(1002, "a control frame must be final and at most 125 bytes"), at;
    if (length == 126) {
      header = 4;
      if (left < header) return at;
      length = (std::uint64_t{p[2]} << 8) | p[3];
      if (length < 126) return fail(1002, "length not minimally encoded"), at;
    } else if (length == 127) {
      header = 10;
      if (left < header) return at;
      length = 0;
      for (int i = 2; i < 10; ++i)
        length = (length << 8) | p[i];
      if (length >> 63) return fail(1002, "length too large"), at;
      if (length <= 0xffff) return fail(1002, "length not minimally encoded"), at;
    }
    if (!control) {
      if (opcode == 0 && message_opcode_ == 0) return fail(1002, "continuation of nothing"), at;
      if (opcode != 0 && message_opcode_ != 0)
        return fail(1002, "a new message inside a fragmented one"), at;
      if (length > max_message_ || message_.size() + length > max_message_)
        return fail(1009, "message too big"), at;
    }
    header += 4; // the masking key
    if (left < header) return at;
    if (left - header < length) {
      needed = header + static_cast<std::size_t>(length);
      return at;
    }
    const unsigned char* key = p + header - 4;
    char* payload = data + at + header;
    const auto n = static_cast<std::size_t>(length);
    unmask(payload, n, key);
    at += header + n;
    event e{event_kind::binary, 0, std::string_view(payload, n)};
    if (control) {
      if (opcode == 8)
        close_event(e.payload, e);
      else
        e.kind = opcode == 9 ? event_kind::ping : event_kind::pong;
      if (e.kind == event_kind::error) return fail(e.code, e.payload), at;
    } else if (!fin) {
      if (opcode != 0) message_opcode_ = static_cast<std::uint8_t>(opcode);
      message_.append(payload, n);
      continue;
    } else {
      const unsigned kind = opcode != 0 ? opcode : message_opcode_;
      e.kind = kind == 1 ? event_kind::text : event_kind::binary;
      if (opcode == 0) {
        message_.append(payload, n);
        message_opcode_ = 0;
        const bool go_on = on_event(event{e.kind, 0, message_});
        release(message_);
        if (!go_on) return failed = true, at;
        continue;
      }
    }
    if (!on_event(e)) return failed = true, at;
  }
}

} // namespace troupe::transport

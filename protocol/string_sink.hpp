#pragma once
// The one msgpack packer stream into a std::string: reply heads and arrays embedded in
// frames later, the store's rows, presence entries.

#include <cstddef>
#include <string>

#include <msgpack.hpp>

namespace troupe::protocol {

/// Appends what a msgpack::packer writes to `bytes`.
struct string_sink {
  std::string bytes;
  void write(const char* data, std::size_t size) { bytes.append(data, size); }
};
using string_packer = msgpack::packer<string_sink>;

} // namespace troupe::protocol

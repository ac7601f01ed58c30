#include "store/sqlite_rows.hpp"

#include <msgpack.hpp>

#include "protocol/operation_codec.hpp"
#include "store/store.hpp"

namespace troupe::store::sqlite {

bool is_msg_map(std::string_view payload, std::uint64_t seq) {
  try {
    std::size_t offset = 0;
    auto handle = msgpack::unpack(payload.data(), payload.size(), offset);
    const msgpack::object& map = handle.get();
    if (offset != payload.size() || map.type != msgpack::type::MAP) return false;
    bool typed = false, numbered = false;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
      const auto& entry = map.via.map.ptr[i];
      if (entry.key.type != msgpack::type::STR) continue;
      const std::string_view key(entry.key.via.str.ptr, entry.key.via.str.size);
      if (key == "t")
        typed = entry.val.type == msgpack::type::STR &&
                std::string_view(entry.val.via.str.ptr, entry.val.via.str.size) == "msg";
      else if (key == "seq")
        numbered = entry.val.type == msgpack::type::POSITIVE_INTEGER && entry.val.via.u64 == seq;
    }
    return typed && numbered;
  } catch (const msgpack::unpack_error&) {
    return false;
  } catch (const msgpack::type_error&) {
    return false;
  }
}

ot::parse_result decode_operation(std::string_view bytes) {
  try {
    std::size_t offset = 0;
    const msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
    if (offset != bytes.size()) return {std::nullopt, "bytes after the operation"};
    return protocol::unpack_operation(handle.get());
  } catch (const std::exception& e) {
    return {std::nullopt, std::string("not MessagePack (") + e.what() + ")"};
  }
}

namespace {
/// Appends to a std::string, for a msgpack::packer.
struct string_appender {
  std::string& bytes;
  void write(const char* data, std::size_t size) { bytes.append(data, size); }
};

void append_entry(std::string_view key, const ot::operation& op, std::string& out) {
  string_appender stream{out};
  msgpack::packer<string_appender> packer(stream);
  packer.pack_str(static_cast<std::uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
  protocol::pack_operation_spanning(packer, op);
}
} // namespace

bool split_lone_entry(std::string_view entries, std::string_view& key, std::string_view& op) {
  if (entries.empty()) return false;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(entries[i]); };
  std::size_t header = 0, size = 0;
  const unsigned char first = byte(0);
  if ((first & 0xe0) == 0xa0) {
    header = 1;
    size = first & 0x1f;
  } else if (first == 0xd9 && entries.size() >= 2) {
    header = 2;
    size = byte(1);
  } else if (first == 0xda && entries.size() >= 3) {
    header = 3;
    size = (std::size_t{byte(1)} << 8) | byte(2);
  } else if (first == 0xdb && entries.size() >= 5) {
    header = 5;
    size = (std::size_t{byte(1)} << 24) | (std::size_t{byte(2)} << 16) |
           (std::size_t{byte(3)} << 8) | byte(4);
  } else {
    return false;
  }
  if (entries.size() < header + size) return false;
  key = entries.substr(header, size);
  op = entries.substr(header + size);
  return true;
}

std::string decode_run(std::string_view bytes, std::size_t count, std::vector<run_entry>& out) {
  std::size_t offset = 0;
  for (std::size_t i = 0; i < count; ++i) {
    try {
      if (offset >= bytes.size()) return "it ends after " + std::to_string(i) + " operations";
      const msgpack::object_handle key = msgpack::unpack(bytes.data(), bytes.size(), offset);
      if (key.get().type != msgpack::type::STR) return "an operation's key is not a string";
      if (offset >= bytes.size()) return "it ends after " + std::to_string(i) + " operations";
      const msgpack::object_handle op = msgpack::unpack(bytes.data(), bytes.size(), offset);
      auto parsed = protocol::unpack_operation(op.get());
      if (!parsed.op) return parsed.error;
      out.push_back(
          {std::string(key.get().via.str.ptr, key.get().via.str.size), std::move(*parsed.op)});
    } catch (const std::exception& e) {
      return std::string("not MessagePack (") + e.what() + ")";
    }
  }
  if (offset != bytes.size()) return "bytes after its operations";
  return {};
}

} // namespace troupe::store::sqlite

namespace troupe::store {

void append_to_runs(std::vector<operation_run>& runs, const core::logged_operation& accepted) {
  if (runs.empty() || runs.back().count >= operation_run::max_ops ||
      runs.back().last_rev + 1 != accepted.rev || runs.back().user != accepted.user) {
    runs.emplace_back();
    runs.back().user = accepted.user;
  }
  auto& run = runs.back();
  sqlite::append_entry(accepted.key, accepted.op, run.entries);
  run.last_rev = accepted.rev;
  ++run.count;
}

} // namespace troupe::store

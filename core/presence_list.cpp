#include "core/presence_list.hpp"

#include <msgpack.hpp>

#include "protocol/string_sink.hpp"

namespace troupe::core {

namespace {

using protocol::string_packer;
using protocol::string_sink;

void put(string_packer& pk, std::string_view text) {
  pk.pack_str(static_cast<std::uint32_t>(text.size()));
  pk.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

} // namespace

std::string encode_entry(const presence_entry& entry) {
  string_sink sink;
  string_packer pk(sink);
  const std::uint32_t size = 2 + !entry.name.empty() + !entry.info.empty() + !entry.state.empty();
  pk.pack_map(size);
  put(pk, "client");
  put(pk, entry.client);
  put(pk, "user");
  put(pk, entry.user);
  if (!entry.name.empty()) {
    put(pk, "name");
    put(pk, entry.name);
  }
  if (!entry.info.empty()) {
    put(pk, "info");
    sink.bytes.append(entry.info);
  }
  if (!entry.state.empty()) {
    put(pk, "state");
    sink.bytes.append(entry.state);
  }
  return std::move(sink.bytes);
}

void presence_list::remember_before(const std::string& client) {
  if (before_.count(client)) return; // the first change of the window knows the old state
  auto it = entries_.find(client);
  before_.emplace(client,
                  it == entries_.end() ? std::nullopt : std::optional<std::string>(it->second));
}

void presence_list::upsert(const presence_entry& entry) {
  remember_before(entry.client);
  entries_.insert_or_assign(entry.client, encode_entry(entry));
}

bool presence_list::remove(const std::string& client) {
  auto it = entries_.find(client);
  if (it == entries_.end()) return false;
  remember_before(client);
  entries_.erase(it);
  return true;
}

bool presence_list::contains(const std::string& client) const { return entries_.count(client) > 0; }

const std::string* presence_list::encoded(const std::string& client) const {
  auto it = entries_.find(client);
  return it == entries_.end() ? nullptr : &it->second;
}

bool presence_list::sealed(const std::string& client) const {
  if (auto it = before_.find(client); it != before_.end()) return it->second.has_value();
  return entries_.count(client) > 0;
}

std::string presence_list::encoded_snapshot(const std::string* extra) const {
  std::vector<std::string_view> items;
  items.reserve(entries_.size() + 1);
  for (const auto& [client, encoded] : entries_) {
    auto before = before_.find(client);
    if (before == before_.end()) items.push_back(encoded); // unchanged since the last diff
  }
  for (const auto& [client, before] : before_)
    if (before) items.push_back(*before); // changed or gone since: as it was
  if (extra) items.push_back(*extra);
  string_sink sink;
  string_packer pk(sink);
  pk.pack_array(static_cast<std::uint32_t>(items.size()));
  for (auto item : items)
    sink.bytes.append(item);
  return std::move(sink.bytes);
}

std::optional<presence_list::diff> presence_list::take_diff() {
  diff result;
  for (auto& [client, before] : before_) {
    auto it = entries_.find(client);
    const std::string* after = it == entries_.end() ? nullptr : &it->second;
    if ((before && after && *before == *after) || (!before && !after))
      continue; // changed and changed back within the window
    if (before) result.leaves.push_back(std::move(*before));
    if (after) result.joins.emplace_back(client, *after);
  }
  before_.clear();
  if (result.joins.empty() && result.leaves.empty()) return std::nullopt;
  result.pseq = ++pseq_;
  return result;
}

} // namespace troupe::core

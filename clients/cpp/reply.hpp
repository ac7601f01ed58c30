// One map received from the server (a reply or a push), kept alive by a shared handle.
// Extensions (presence, documents) read their own fields from it.
#pragma once

#include <memory>
#include <string_view>

#include <msgpack.hpp>

#include "clients/cpp/map_view.hpp"
#include "clients/cpp/value.hpp"

namespace troupe::client {

class reply {
public:
  reply() = default;
  explicit reply(std::shared_ptr<const msgpack::object_handle> h) : h_(std::move(h)) {}

  const msgpack::object& object() const { return h_->get(); }
  map_view map() const { return map_view(h_->get()); }
  std::string_view type() const { return map().str("t").value_or(std::string_view{}); }
  // A field as an owning `value` (nil if absent).
  client::value field(std::string_view key) const;
  // The whole map as an owning `value`.
  client::value value() const { return client::value(h_, h_->get()); }
  const std::shared_ptr<const msgpack::object_handle>& handle() const { return h_; }

private:
  std::shared_ptr<const msgpack::object_handle> h_;
};

} // namespace troupe::client

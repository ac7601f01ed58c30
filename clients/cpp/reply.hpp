// One map received from the server (a reply or a push), kept alive by a shared handle.
// Extensions (presence, documents) read their own fields from it.
#pragma once

#include <memory>
#include <string_view>

#include <msgpack.hpp>

#include "clients/cpp/map_view.hpp"
#include "clients/cpp/value.hpp"

namespace troupe::client {

class Reply {
 public:
  Reply() = default;
  explicit Reply(std::shared_ptr<const msgpack::object_handle> h) : h_(std::move(h)) {}

  const msgpack::object& object() const { return h_->get(); }
  MapView map() const { return MapView(h_->get()); }
  std::string_view type() const { return map().str("t").value_or(std::string_view{}); }
  // A field as an owning Value (nil if absent).
  Value field(std::string_view key) const;
  // The whole map as an owning Value.
  Value value() const { return Value(h_, h_->get()); }
  const std::shared_ptr<const msgpack::object_handle>& handle() const { return h_; }

 private:
  std::shared_ptr<const msgpack::object_handle> h_;
};

}  // namespace troupe::client

#include "clients/cpp/reply.hpp"

namespace troupe::client {

client::value reply::field(std::string_view key) const {
  const auto* v = map().get(key);
  if (!v) return client::value();
  return client::value(h_, *v);
}

} // namespace troupe::client

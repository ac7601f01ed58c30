#include "clients/cpp/reply.hpp"

namespace troupe::client {

Value Reply::field(std::string_view key) const {
  const auto* v = map().get(key);
  if (!v) return Value();
  return Value(h_, *v);
}

}  // namespace troupe::client

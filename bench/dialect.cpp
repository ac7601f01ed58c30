#include "dialect.hpp"

#include "socketio_dialect.hpp"
#include "troupe_dialect.hpp"

namespace bench {

std::unique_ptr<Dialect> make_dialect(std::string_view kind) {
  if (kind == "troupe" || kind == "ws") return std::make_unique<TroupeDialect>(kind);
  if (kind == "socketio") return std::make_unique<SocketIoDialect>();
  return nullptr;
}

} // namespace bench

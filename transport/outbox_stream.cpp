#include "transport/outbox_stream.hpp"

namespace troupe::transport {

void teardown(boost::beast::role_type, outbox_stream& stream, error_code& ec) {
  stream.box().close();
  ec = {};
}

void beast_close_socket(outbox_stream& stream) { stream.box().close(); }

} // namespace troupe::transport

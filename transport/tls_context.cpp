#include "transport/tls_context.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace troupe::transport {

namespace ssl = boost::asio::ssl;

namespace {

/// OpenSSL's own message for a missing file is "system lib": say what is wrong first.
void require_readable(const std::string& file, const char* what) {
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error(std::string("cannot read the TLS ") + what + " '" + file +
                             "': " + std::strerror(errno));
}

} // namespace

std::shared_ptr<ssl::context> make_tls_context(const std::string& cert_file,
                                               const std::string& key_file) {
  require_readable(cert_file, "certificate (--tls-cert)");
  require_readable(key_file, "key (--tls-key)");
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  // ws_session reads through the TLS stream without blocking, beside the outbox's write in
  // flight: no renegotiation, whose handshake would have a read write records.
  SSL_CTX_set_options(context->native_handle(), SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec)
    throw std::runtime_error("cannot use the TLS certificate '" + cert_file +
                             "' (--tls-cert): " + ec.message());
  context->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec)
    throw std::runtime_error("cannot use the TLS key '" + key_file +
                             "' (--tls-key): " + ec.message());
  if (SSL_CTX_check_private_key(context->native_handle()) != 1)
    throw std::runtime_error("the TLS key '" + key_file + "' does not belong to the certificate '" +
                             cert_file + "'");
  return context;
}

} // namespace troupe::transport

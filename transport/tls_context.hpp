#pragma once
// The server's TLS configuration, loaded once at start-up from --tls-cert and --tls-key.

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace troupe::transport {

/// A TLS 1.2+ server context with the PEM certificate chain and private key. Throws
/// std::runtime_error naming the file and the reason when either cannot be used (missing,
/// unreadable, not PEM, or a key that does not belong to the certificate).
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file,
                                                            const std::string& key_file);

} // namespace troupe::transport

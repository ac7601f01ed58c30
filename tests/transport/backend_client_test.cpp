// The backend client's pure parts: the --backend URL, the signature, the contract's mapping
// of a reply to an RPC outcome. (Calls over real sockets: tests/integration/rpc_test.cpp.)
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <stdexcept>

#include "transport/backend_client.hpp"

using namespace troupe;
using transport::backend_client;
using transport::parse_backend_url;

TEST(BackendUrl, HttpAndHttpsWithDefaultsPortsAndBase) {
  auto plain = parse_backend_url("http://127.0.0.1:9000");
  EXPECT_FALSE(plain.tls);
  EXPECT_EQ(plain.host, "127.0.0.1");
  EXPECT_EQ(plain.port, "9000");
  EXPECT_EQ(plain.base, "");
  auto secure = parse_backend_url("https://api.example.com/troupe/hooks/");
  EXPECT_TRUE(secure.tls);
  EXPECT_EQ(secure.host, "api.example.com");
  EXPECT_EQ(secure.port, "443");
  EXPECT_EQ(secure.base, "/troupe/hooks"); // calls go to /troupe/hooks/rpc
  EXPECT_EQ(parse_backend_url("http://backend").port, "80");
  auto v6 = parse_backend_url("https://[::1]:8443/x");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "8443");
}

TEST(BackendUrl, BadUrlsAreRefused) {
  for (const char* bad :
       {"", "ftp://x", "backend:80", "http://", "http://:80", "http://h:", "http://h:0",
        "http://h:70000", "http://h:8a", "http://u:p@h", "http://h/x?y=1", "https://[::1"})
    EXPECT_THROW(parse_backend_url(bad), std::invalid_argument) << bad;
}

TEST(BackendSignature, StripesSchemeOverTimeAndBody) {
  // HMAC-SHA256("key", "1700000000.{}"), computed independently with openssl dgst.
  const auto s = transport::backend_signature("key", 1700000000, "{}");
  EXPECT_EQ(s, "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
  EXPECT_NE(s, transport::backend_signature("key", 1700000001, "{}"));
  EXPECT_NE(s, transport::backend_signature("key", 1700000000, "{ }"));
  EXPECT_NE(s, transport::backend_signature("other", 1700000000, "{}"));
}

namespace {
std::string packed_int(int v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return {b.data(), b.size()};
}
} // namespace

TEST(RpcOutcome, TheContractsMapping) {
  using protocol::error_code;
  auto ok = backend_client::rpc_outcome_of(200, R"({"data":7})", {});
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.data, packed_int(7));
  EXPECT_TRUE(backend_client::rpc_outcome_of(201, "{}", {}).data.empty()); // nil
  EXPECT_FALSE(backend_client::rpc_outcome_of(204, R"({"data":null})", {}).error);
  EXPECT_EQ(backend_client::rpc_outcome_of(200, "[1]", {}).error, error_code::unavailable);
  EXPECT_EQ(backend_client::rpc_outcome_of(200, "text", {}).error, error_code::unavailable);
  EXPECT_EQ(backend_client::rpc_outcome_of(200, "", {}).error, error_code::unavailable);
  auto conflict = backend_client::rpc_outcome_of(409, R"({"error":"conflict","reason":"r"})", {});
  EXPECT_EQ(conflict.error, error_code::conflict);
  EXPECT_EQ(conflict.reason, "r");
  EXPECT_EQ(backend_client::rpc_outcome_of(400, R"({"error":"nope"})", {}).error,
            error_code::forbidden);
  EXPECT_EQ(backend_client::rpc_outcome_of(404, R"({})", {}).error, error_code::forbidden);
  EXPECT_EQ(backend_client::rpc_outcome_of(403, "denied", {}).error, error_code::unavailable);
  EXPECT_EQ(backend_client::rpc_outcome_of(500, R"({"error":"conflict"})", {}).error,
            error_code::unavailable);
  EXPECT_EQ(backend_client::rpc_outcome_of(302, "{}", {}).error, error_code::unavailable);
  EXPECT_EQ(backend_client::rpc_outcome_of(0, "", std::make_error_code(std::errc::timed_out)).error,
            error_code::unavailable);
  EXPECT_EQ(
      backend_client::rpc_outcome_of(0, "", std::make_error_code(std::errc::connection_refused))
          .error,
      error_code::unavailable);
}

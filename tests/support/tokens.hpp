// Connection tokens for tests: minted with libjwt, or put together by hand for what libjwt
// would not sign (a header that lies about its algorithm, a missing signature).
#pragma once

#include <jwt.h>

#include <boost/beast/core/detail/base64.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace troupe::test {

/// Signs `claims` with `secret` (`alg` HS256 unless told otherwise; JWT_ALG_NONE: unsigned).
inline std::string mint_token(const nlohmann::json& claims, const std::string& secret,
                              jwt_alg_t alg = JWT_ALG_HS256) {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
  std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, jwt_free);
  if (jwt_add_grants_json(jwt.get(), claims.dump().c_str()) != 0)
    throw std::runtime_error("jwt_add_grants_json failed");
  const bool unsigned_token = alg == JWT_ALG_NONE;
  if (jwt_set_alg(jwt.get(), alg,
                  unsigned_token ? nullptr : reinterpret_cast<const unsigned char*>(secret.data()),
                  unsigned_token ? 0 : static_cast<int>(secret.size())) != 0)
    throw std::runtime_error("jwt_set_alg failed");
  std::unique_ptr<char, void (*)(void*)> text(jwt_encode_str(jwt.get()), std::free);
  if (!text) throw std::runtime_error("jwt_encode_str failed");
  return text.get();
}

/// Base64url without padding, as JWTs spell their parts.
inline std::string base64url(std::string_view bytes) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(bytes.size()), '\0');
  out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

/// `header.payload.signature` from these parts, signed by nobody.
inline std::string hand_token(const nlohmann::json& header, const nlohmann::json& claims,
                              std::string_view signature = {}) {
  return base64url(header.dump()) + "." + base64url(claims.dump()) + "." + std::string(signature);
}

/// Seconds since the epoch, `offset` from now: for `exp`.
inline std::int64_t epoch_seconds(std::chrono::seconds offset = {}) {
  return std::chrono::duration_cast<std::chrono::seconds>(
             (std::chrono::system_clock::now() + offset).time_since_epoch())
      .count();
}

} // namespace troupe::test

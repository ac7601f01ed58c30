#include "core/token.hpp"

#include <jwt.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>

namespace troupe::core {

namespace {

using json = nlohmann::json;

struct jwt_deleter {
  void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};
struct c_string_deleter {
  void operator()(char* text) const noexcept { std::free(text); }
};

token_result refuse(std::string reason) { return {std::nullopt, std::move(reason)}; }

/// A claim that must be an array of strings, if present.
bool read_patterns(const json& claims, const char* name, std::vector<std::string>& out) {
  auto it = claims.find(name);
  if (it == claims.end() || it->is_null()) return true;
  if (!it->is_array()) return false;
  for (const auto& pattern : *it) {
    if (!pattern.is_string()) return false;
    out.push_back(pattern.get<std::string>());
  }
  return true;
}

/// Decodes the token (checking its signature when `secret` is given) and reads the claims
/// every mode shares: `sub`, `name`, `info`.
token_result decode(std::string_view token, const std::string_view* secret, json& claims) {
  const std::string text(token); // libjwt wants it NUL-terminated
  jwt_t* raw = nullptr;
  const int rc = secret ? jwt_decode(&raw, text.c_str(),
                                     reinterpret_cast<const unsigned char*>(secret->data()),
                                     static_cast<int>(secret->size()))
                        : jwt_decode(&raw, text.c_str(), nullptr, 0);
  std::unique_ptr<jwt_t, jwt_deleter> jwt(raw);
  if (rc != 0 || !jwt) return refuse("malformed token or bad signature");
  // Pinned: `none` carries no signature, and another algorithm under the same key is how
  // HS/RS confusion starts. libjwt verifies whatever the header names; we accept one.
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256 && secret) return refuse("token alg must be HS256");
  std::unique_ptr<char, c_string_deleter> grants(jwt_get_grants_json(jwt.get(), nullptr));
  if (!grants) return refuse("token has no claims");
  claims = json::parse(grants.get(), nullptr, false);
  if (!claims.is_object()) return refuse("token claims are not an object");

  token_claims out;
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty())
    return refuse("token has no sub");
  out.user = sub->get<std::string>();
  if (auto name = claims.find("name"); name != claims.end() && !name->is_null()) {
    if (!name->is_string()) return refuse("token name must be a string");
    out.name = name->get<std::string>();
  }
  if (auto info = claims.find("info"); info != claims.end() && !info->is_null()) {
    const auto packed = json::to_msgpack(*info);
    out.info.assign(packed.begin(), packed.end());
  }
  return {std::move(out), {}};
}

/// A time claim in seconds since the epoch, if present; false if it is not a number.
bool read_time(const json& claims, const char* name, std::optional<std::int64_t>& out) {
  auto it = claims.find(name);
  if (it == claims.end() || it->is_null()) return true;
  if (!it->is_number()) return false;
  out = it->is_number_float() ? static_cast<std::int64_t>(it->get<double>())
                              : it->get<std::int64_t>();
  return true;
}

} // namespace

token_result verify_token(std::string_view token, std::string_view secret, std::int64_t now) {
  json claims;
  auto result = decode(token, &secret, claims);
  if (!result) return result;
  auto& out = *result.claims;
  std::optional<std::int64_t> not_before;
  if (!read_time(claims, "exp", out.expires) || !read_time(claims, "nbf", not_before))
    return refuse("token exp and nbf must be numbers");
  if (out.expires && now >= *out.expires) return refuse("token expired");
  if (not_before && now < *not_before) return refuse("token not valid yet");
  std::vector<std::string> write, read;
  if (!read_patterns(claims, "rooms", write) || !read_patterns(claims, "read", read))
    return refuse("token rooms and read must be arrays of strings");
  out.access = room_access(std::move(write), std::move(read));
  return result;
}

token_result read_token_unverified(std::string_view token) {
  json claims;
  auto result = decode(token, nullptr, claims);
  if (result) result.claims->access = room_access::everything();
  return result;
}

std::int64_t token_clock_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace troupe::core

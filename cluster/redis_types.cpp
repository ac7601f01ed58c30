#include "cluster/redis_types.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

namespace troupe::cluster {

redis_reply redis_reply::from(const redisReply& r) {
  redis_reply out;
  switch (r.type) {
  case REDIS_REPLY_INTEGER:
    out.type = kind::integer;
    out.integer = r.integer;
    break;
  case REDIS_REPLY_STRING:
    out.type = kind::string;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_STATUS:
    out.type = kind::status;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_ERROR:
    out.type = kind::error;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_ARRAY:
    out.type = kind::array;
    out.elements.reserve(r.elements);
    for (std::size_t i = 0; i < r.elements; ++i)
      out.elements.push_back(from(*r.element[i]));
    break;
  default: // REDIS_REPLY_NIL
    break;
  }
  return out;
}

namespace {
struct category : std::error_category {
  const char* name() const noexcept override { return "troupe.redis"; }
  std::string message(int e) const override {
    switch (static_cast<redis_errc>(e)) {
    case redis_errc::not_connected:
      return "not connected to Redis";
    case redis_errc::link_lost:
      return "the link to Redis broke before the reply";
    case redis_errc::timeout:
      return "no reply from Redis within the timeout";
    case redis_errc::closed:
      return "the Redis connection was closed";
    case redis_errc::invalid_command:
      return "command refused without sending";
    }
    return "unknown Redis error";
  }
};
} // namespace

const std::error_category& redis_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code make_error_code(redis_errc e) noexcept {
  return {static_cast<int>(e), redis_category()};
}

std::string sha1_hex(std::string_view bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * SHA_DIGEST_LENGTH, '0');
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xf];
  }
  return out;
}

redis_script::redis_script(std::string text)
    : text_(std::make_shared<const std::string>(std::move(text))), sha1_(sha1_hex(*text_)) {}

} // namespace troupe::cluster

#pragma once
// A minimal JSON object builder: the generator prints flat records with a few nested
// objects, so a string builder is all it needs.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bench {

class Json {
public:
  Json& add(std::string_view key, std::string_view value);
  Json& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  Json& add(std::string_view key, double value, int decimals = 3); // NaN/inf -> null
  Json& add(std::string_view key, std::int64_t value);
  Json& add(std::string_view key, std::uint64_t value);
  Json& add(std::string_view key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  Json& add(std::string_view key, bool value);
  Json& add(std::string_view key, std::optional<double> value, int decimals = 3);
  Json& add(std::string_view key, const Json& object);
  Json& add_null(std::string_view key);
  std::string str() const { return "{" + body_ + "}"; }

private:
  void key(std::string_view k);
  std::string body_;
};

std::string json_escape(std::string_view s);

} // namespace bench

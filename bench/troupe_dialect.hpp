#pragma once
#include "dialect.hpp"

#include <msgpack.hpp>

namespace bench {

// Troupe's wire protocol (binary frames of concatenated MessagePack maps). The node `ws`
// peer speaks the same subset, so it uses this dialect too.
class TroupeDialect final : public Dialect {
public:
  explicit TroupeDialect(std::string_view name) : name_(name) {}
  std::string_view name() const override { return name_; }
  std::string_view target() const override { return "/ws"; }
  bool client_speaks_first() const override { return true; }

  Outgoing connect(std::uint64_t id, std::string_view user) override;
  Outgoing subscribe(std::uint64_t id, std::string_view room) override;
  Outgoing publish(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                   std::size_t n) override;
  Outgoing publish_keyed(std::uint64_t id, std::string_view room, const std::uint8_t* data,
                         std::size_t n, std::string_view key) override;
  Outgoing subscribe_since(std::uint64_t id, std::string_view room, std::uint64_t seq,
                           std::string_view epoch) override;
  bool parse(const char* data, std::size_t n, bool text, DialectSink& sink) override;

private:
  // A subscribed reply or pdiff at `data`, decoded without building objects and reported;
  // returns the bytes it took, 0 if the map is something else. Throws when malformed.
  std::size_t parse_presence(const char* data, std::size_t n, DialectSink& sink);

  std::string name_;
  msgpack::zone zone_;                        // reused for every frame: cleared, not reallocated
  std::vector<PresenceEntry> joins_, leaves_; // reused likewise
};

} // namespace bench

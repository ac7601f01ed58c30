#pragma once
// A room's presence list: one entry per connection, and the diffs that tell members how it
// changed. Plain class, single writer (the presence actor).
//
// Changes are gathered into a pending diff and sealed by take_diff() at most once per
// coalescing window: an entry's state before the window is compared with its state at the
// end, so a join and a leave inside one window cancel out, and a reconnect within the grace
// period (old entry leaves, new one joins) arrives as one diff.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::core {

struct presence_entry {
  std::string client;
  std::string user;
  std::string name;   ///< empty: none
  std::string info;   ///< encoded MessagePack value, empty: none
  std::string state;  ///< encoded MessagePack map, empty: none
};

/// The entry as the wire shows it: {client, user, name?, info?, state?}.
std::string encode_entry(const presence_entry& entry);

class presence_list {
public:
  struct diff {
    std::uint64_t pseq = 0;
    std::vector<std::string> joins;  ///< encoded entries
    std::vector<std::string> leaves; ///< encoded entries
  };

  /// Adds the entry, or replaces the one with the same client (a state change).
  void upsert(presence_entry entry);
  /// Removes the entry of `client`; false if there was none.
  bool remove(const std::string& client);
  const presence_entry* find(const std::string& client) const;
  std::size_t size() const noexcept { return entries_.size(); }

  /// The last diff number handed out.
  std::uint64_t pseq() const noexcept { return pseq_; }

  /// The pseq a member joining now is told: the number of the pending diff, which already
  /// holds its arrival and which it will not be sent. Promises that diff will be sealed.
  std::uint64_t promise_next() noexcept {
    promised_ = true;
    return pseq_ + 1;
  }

  bool has_pending() const noexcept { return !before_.empty() || promised_; }

  /// Every entry, as the wire's array, pending changes included.
  std::string encoded_members() const;

  /// Seals the pending changes into the next diff, or nothing if none took effect (and no
  /// joiner was promised its number).
  std::optional<diff> take_diff();

private:
  struct stored {
    presence_entry entry;
    std::string encoded;
  };
  void remember_before(const std::string& client);

  std::unordered_map<std::string, stored> entries_;
  // Entries as the last diff left them, for every client changed since: nullopt if absent.
  std::unordered_map<std::string, std::optional<std::string>> before_;
  std::uint64_t pseq_ = 0;
  bool promised_ = false;
};

} // namespace troupe::core

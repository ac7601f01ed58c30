#pragma once
// A room's presence list: one entry per connection, and the diffs that tell members how it
// changed. Plain class, single writer (the presence actor).
//
// Changes are gathered into a pending diff and sealed by take_diff() at most once per
// coalescing window: an entry's state before the window is compared with its state at the
// end, so a join and a leave inside one window cancel out, and a reconnect within the grace
// period (old entry leaves, new one joins) arrives as one diff. Snapshots (`subscribed`,
// `presence`) show the list as the last sealed diff left it, so that the next diff a reader
// gets, pseq + 1, brings it exactly up to date.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::core {

struct presence_entry {
  std::string client;
  std::string user;
  std::string name;  ///< empty: none
  std::string info;  ///< encoded MessagePack value, empty: none
  std::string state; ///< encoded MessagePack map, empty: none
};

/// The entry as the wire shows it: {client, user, name?, info?, state?}.
std::string encode_entry(const presence_entry& entry);

class presence_list {
public:
  struct diff {
    std::uint64_t pseq = 0;
    std::vector<std::pair<std::string, std::string>> joins; ///< client, encoded entry
    std::vector<std::string> leaves;                        ///< encoded entries
  };

  /// Adds the entry, or replaces the one with the same client (a state change).
  void upsert(const presence_entry& entry);
  /// Removes the entry of `client`; false if there was none.
  bool remove(const std::string& client);
  bool contains(const std::string& client) const;
  /// The entry's current encoding, or null.
  const std::string* encoded(const std::string& client) const;
  /// Whether the last sealed diff left `client` listed.
  bool sealed(const std::string& client) const;
  std::size_t size() const noexcept { return entries_.size(); }

  /// The last diff number handed out: the version snapshots show.
  std::uint64_t pseq() const noexcept { return pseq_; }
  bool has_pending() const noexcept { return !before_.empty(); }

  /// The list as the last sealed diff left it, as the wire's array, plus `extra` (an
  /// encoded entry not in it: a joiner's own, which the contract wants in its reply).
  std::string encoded_snapshot(const std::string* extra = nullptr) const;

  /// Seals the pending changes into the next diff, or nothing if none took effect.
  std::optional<diff> take_diff();

private:
  void remember_before(const std::string& client);

  // By client: the entry in its wire form only (an entry is rewritten whole on `pset`, by
  // its member, who knows the rest), as every idle member has one.
  std::unordered_map<std::string, std::string> entries_;
  // Entries as the last diff left them, for every client changed since: nullopt if absent.
  std::unordered_map<std::string, std::optional<std::string>> before_;
  std::uint64_t pseq_ = 0;
};

} // namespace troupe::core

#pragma once
// Where rooms keep their state while no actor holds it: an idle room hands its log and its
// document here and a restarted room takes them back, so seq, rev, epoch, history and text
// survive eviction. The
// memory store keeps it for the process's life; a durable store keeps it on disk.

#include <optional>
#include <string>
#include <string_view>

#include "core/document_state.hpp"
#include "core/history_log.hpp"

namespace troupe::core {

class store {
public:
  virtual ~store() = default;

  /// The saved log of `room`, removed from the store: the caller's actor owns it now.
  /// Empty for a room never seen.
  virtual std::optional<history_log> take_log(std::string_view room) = 0;

  /// Keeps `log` for `room` until it is taken again.
  virtual void keep_log(std::string_view room, history_log log) = 0;

  /// The saved document of `room`, removed from the store; empty for a room that never had
  /// one.
  virtual std::optional<document_state> take_document(std::string_view room) = 0;

  /// Keeps `document` for `room` until it is taken again.
  virtual void keep_document(std::string_view room, document_state document) = 0;
};

} // namespace troupe::core

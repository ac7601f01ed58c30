// The registry of a connection's documents: opens them, owns the connection's `op` and
// `pdiff` push handlers and routes them by room (see document.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "clients/cpp/connection.hpp"
#include "clients/cpp/document.hpp"
#include "clients/cpp/result.hpp"

namespace troupe::client {

// The documents of one `connection`.
class documents {
public:
  struct options {
    // How often a published cursor is refreshed while others' edits move the revision on
    // (so that late joiners can place it).
    std::chrono::milliseconds cursor_refresh{1000};
    // Retry delay after `rate_limited` / `unavailable`.
    std::chrono::milliseconds retry{500};
    // Server operations kept to place cursors that refer to an older revision.
    std::size_t keep_ops = 1000;
  };

  explicit documents(connection& client);
  documents(connection& client, options opts);
  ~documents();
  documents(const documents&) = delete;
  documents& operator=(const documents&) = delete;

  // Opens the document of `room` (`open`, sent once connected). `done` gets the first
  // `opened` or the refusal; later reopens go to handlers.on_opened (the first one too).
  // A room already open through this registry fails with `already_open`.
  std::shared_ptr<document> open(std::string room, document_handlers handlers = {},
                                 std::function<void(result<document_opened>)> done = {});

  connection& client() { return client_; }

private:
  connection& client_;
  std::shared_ptr<document::registry> core_;
};

} // namespace troupe::client

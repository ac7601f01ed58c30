// Collaborative plain-text documents on top of `connection`: open a room's document, edit it
// locally at once, and see everyone else's edits and cursors, with one operation in flight
// at a time (document_state holds the logic; this file does the I/O).
//
//   documents docs(client);                 // before client.start(): it hears the connection
//   auto doc = docs.open("notes", {.on_change = [](const document_change& c) { … }});
//   client.start();
//   doc->insert(0, "hello");                // applies locally now, sent when it can be
//
// A `documents` registry owns the `connection`'s `op` and `pdiff` push handlers (on_push keeps one
// handler per type) and routes them by room; keep one per `connection`, alive while its documents
// are used, and destroy both before the `connection`. Every method of `document` may be called from
// any thread. Callbacks run on the client's strand, one at a time; an edit is made against the
// local text as it is at the call, so an editor that mirrors the text should edit from those
// callbacks (or post to client.executor()), or use edit_with().
//
// On a reconnect each document is opened again with `since: {rev, epoch}`: the missed
// operations are applied (kind recovered) and the operation that was in flight is sent again
// with its key (the engine applies it once). If the engine no longer holds them, the
// document is rebuilt from its text and local changes not yet acknowledged are lost
// (`document_opened::dropped_local`).
//
// Files: document.hpp (the handle), documents.hpp (the registry that opens them),
// blocking_document.hpp (a blocking face for tests and tools).
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/cpp/connection.hpp"
#include "clients/cpp/document_state.hpp"
#include "clients/cpp/presence_view.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/types.hpp"

namespace troupe::client {

enum class open_kind {
  initial,   // the first `opened`: the document's text
  recovered, // opened again with `since` and nothing was lost: the missed operations went
             // through on_change first, and pending local changes are kept
  rebuilt,   // opened again from the text (the log no longer reached back, a new epoch, a
             // refused operation): the local text was replaced
};

const char* to_string(open_kind k);

struct document_opened {
  std::string room;
  open_kind kind = open_kind::initial;
  std::uint64_t rev = 0;
  std::string epoch;
  std::size_t missed = 0;     // recovered: the operations applied
  bool dropped_local = false; // rebuilt: local changes the engine never got were lost
};

// A remote operation applied to the local text.
struct document_change {
  std::string room;
  std::uint64_t rev = 0; // the revision it got
  std::string user;
  ot::operation op; // as applied to the local text (transformed over pending local edits)
};

struct document_handlers {
  std::function<void(const document_change&)> on_change;
  // Each `opened`: initial, recovered (after a reconnect or a hole), rebuilt.
  std::function<void(const document_opened&)> on_opened;
  // Remote cursors changed (moved by an edit, set, gone); positions in the local text.
  std::function<void(const std::vector<remote_cursor>&)> on_cursors;
  // The document's presence (who has it open), like room_handlers::on_presence.
  std::function<void(const presence_event&)> on_presence;
  // Something went wrong that belongs to no call: an operation refused (conflict, bad_request,
  // forbidden: local changes are then dropped and the document rebuilt), a reopen refused,
  // a malformed push.
  std::function<void(const error&)> on_error;
  // Every local change has been acknowledged.
  std::function<void()> on_synced;
};

class documents;

class document : public std::enable_shared_from_this<document>, private presence_view::sink {
public:
  struct registry;
  ~document() override;
  document(const document&) = delete;
  document& operator=(const document&) = delete;

  const std::string& room() const { return room_; }

  // The local text (a copy), its length in code points, the server revision it builds on.
  std::string text() const;
  std::size_t length() const;
  std::uint64_t rev() const;
  // Whether it is open on the current connection (edits are sent).
  bool live() const;
  // Local changes not yet acknowledged.
  bool pending() const;

  // An edit made against the local text: applied at once, sent when it can be. False if it
  // does not fit the local text, or the document is not open (yet) or closed.
  bool edit(const ot::operation& op);
  bool insert(std::size_t pos, std::string_view utf8);
  bool remove(std::size_t pos, std::size_t n);
  // Calls make(local text) under the document's lock and applies the edit it returns: an
  // edit that cannot race with remote operations, from any thread.
  bool edit_with(const std::function<ot::operation(const ot::rope&)>& make);
  // Calls fn(local text) under the document's lock.
  void read(const std::function<void(const ot::rope&)>& fn) const;

  // Publish this connection's cursor (positions in the local text): `pset {cursor: {rev,
  // pos, anchor?}}` once nothing is pending (until then it follows remote edits), again
  // after each reopen and when the revision moved on (at most every cursor_refresh).
  void set_cursor(std::size_t pos, std::optional<std::size_t> anchor = std::nullopt);
  // The other connections' cursors, in the local text.
  std::vector<remote_cursor> remote_cursors() const;
  // A copy of the document's presence view.
  presence_snapshot presence() const;

  // Calls fn on the client's strand once nothing is pending (at once if nothing is).
  void when_synced(std::function<void()> fn);
  // `close`; the handle is spent. Local changes not yet acknowledged are dropped.
  void close(std::function<void(result<nothing>)> done = {});

  // Tests: the state machine (under the lock).
  void inspect(const std::function<void(const document_state&)>& fn) const;

private:
  friend class documents;
  enum class phase_kind { idle, opening, open, closed };

  document(std::shared_ptr<registry> core, connection& client, std::string room,
           document_handlers h);

  // presence_view::sink
  void presence_changed(const presence_event& ev) override;
  void typing_changed(const typing_event&) override {}
  void fetch_presence(const std::string& room) override;

  // All below with mu_ held.
  void start_open(std::function<void(result<document_opened>)> done);
  void send_open(bool with_since);
  void on_opened_reply(std::uint64_t token, result<reply> r);
  void on_op_reply(const std::string& key, std::uint64_t gen, result<reply> r);
  void on_op_push(const reply& r);
  void on_pdiff(presence_diff d);
  void on_connected(const std::string& client_id);
  void on_connection_lost();
  void on_remote_applied(const doc_op& op, const ot::operation& local);
  void applied_edit();
  // Our in-flight operation is acknowledged: send the buffer, publish the cursor, tell waiters.
  void own_op_acked();
  void flush();
  void flush_cursor();
  void send_cursor(const cursor_at& c);
  void arm_cursor_refresh();
  void schedule_retry();
  void unregister();
  void check_synced();
  void check_cursors();
  void fail_open(const error& e);
  void report(const error& e);

  std::shared_ptr<registry> core_;
  connection& client_;
  const std::string room_;
  document_handlers h_;
  mutable std::recursive_mutex mu_;

  document_state st_;
  presence_view view_;
  phase_kind phase_ = phase_kind::idle;
  std::uint64_t open_token_ = 0; // the `open` whose reply counts
  std::uint64_t gen_ = 0;        // connection generation (ops sent on an older one are moot)
  std::string self_;             // this connection's client id
  std::function<void(result<document_opened>)> first_done_;
  std::string failed_key_; // the key of an operation refused with conflict once already

  struct wanted_cursor {
    std::size_t pos = 0;
    std::optional<std::size_t> anchor;
  };
  std::optional<wanted_cursor> cursor_;
  std::optional<cursor_at> cursor_sent_; // the last published on this connection
  std::chrono::steady_clock::time_point cursor_sent_at_{};
  bool cursor_dirty_ = false; // set_cursor() was called since the last publication
  bool cursor_timer_armed_ = false;
  bool connected_ = false;
  bool was_pending_ = false;
  bool retry_armed_ = false;
  std::vector<remote_cursor> last_cursors_;
  std::vector<std::function<void()>> synced_waiters_;
  struct timers;
  std::unique_ptr<timers> timers_;
};

} // namespace troupe::client

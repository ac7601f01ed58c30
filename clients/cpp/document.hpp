// Collaborative plain-text documents on top of Client: open a room's document, edit it
// locally at once, and see everyone else's edits and cursors, with one operation in flight
// at a time (DocumentState holds the logic; this file does the I/O).
//
//   Documents docs(client);                 // before client.start(): it hears the connection
//   auto doc = docs.open("notes", {.on_change = [](const DocumentChange& c) { … }});
//   client.start();
//   doc->insert(0, "hello");                // applies locally now, sent when it can be
//
// A Documents registry owns the Client's `op` and `pdiff` push handlers (on_push keeps one
// handler per type) and routes them by room; keep one per Client, alive while its documents
// are used, and destroy both before the Client. Every method of Document may be called from
// any thread. Callbacks run on the client's strand, one at a time; an edit is made against the
// local text as it is at the call, so an editor that mirrors the text should edit from those
// callbacks (or post to client.executor()), or use edit_with().
//
// On a reconnect each document is opened again with `since: {rev, epoch}`: the missed
// operations are applied (kind recovered) and the operation that was in flight is sent again
// with its key (the engine applies it once). If the engine no longer holds them, the
// document is rebuilt from its text and local changes not yet acknowledged are lost
// (`DocumentOpened::dropped_local`).
#pragma once

#include <utility>  // before Boost.Asio (Boost 1.74 with C++20)

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

#include "clients/cpp/client.hpp"
#include "clients/cpp/document_state.hpp"
#include "clients/cpp/presence_view.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/types.hpp"

namespace troupe::client {

enum class OpenKind {
  initial,    // the first `opened`: the document's text
  recovered,  // opened again with `since` and nothing was lost: the missed operations went
              // through on_change first, and pending local changes are kept
  rebuilt,    // opened again from the text (the log no longer reached back, a new epoch, a
              // refused operation): the local text was replaced
};

const char* to_string(OpenKind k);

struct DocumentOpened {
  std::string room;
  OpenKind kind = OpenKind::initial;
  std::uint64_t rev = 0;
  std::string epoch;
  std::size_t missed = 0;      // recovered: the operations applied
  bool dropped_local = false;  // rebuilt: local changes the engine never got were lost
};

// A remote operation applied to the local text.
struct DocumentChange {
  std::string room;
  std::uint64_t rev = 0;  // the revision it got
  std::string user;
  ot::operation op;       // as applied to the local text (transformed over pending local edits)
};

struct DocumentHandlers {
  std::function<void(const DocumentChange&)> on_change;
  // Each `opened`: initial, recovered (after a reconnect or a hole), rebuilt.
  std::function<void(const DocumentOpened&)> on_opened;
  // Remote cursors changed (moved by an edit, set, gone); positions in the local text.
  std::function<void(const std::vector<RemoteCursor>&)> on_cursors;
  // The document's presence (who has it open), like RoomHandlers::on_presence.
  std::function<void(const PresenceEvent&)> on_presence;
  // Something went wrong that belongs to no call: an operation refused (conflict, bad_request,
  // forbidden: local changes are then dropped and the document rebuilt), a reopen refused,
  // a malformed push.
  std::function<void(const Error&)> on_error;
  // Every local change has been acknowledged.
  std::function<void()> on_synced;
};

class Documents;

class Document : public std::enable_shared_from_this<Document>, private PresenceView::Sink {
 public:
  struct Core;
  ~Document() override;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

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
  std::vector<RemoteCursor> remote_cursors() const;
  // A copy of the document's presence view.
  PresenceSnapshot presence() const;

  // Calls fn on the client's strand once nothing is pending (at once if nothing is).
  void when_synced(std::function<void()> fn);
  // `close`; the handle is spent. Local changes not yet acknowledged are dropped.
  void close(std::function<void(Result<Done>)> done = {});

  // Tests: the state machine (under the lock).
  void inspect(const std::function<void(const DocumentState&)>& fn) const;

 private:
  friend class Documents;
  enum class Phase { idle, opening, open, closed };

  Document(std::shared_ptr<Core> core, Client& client, std::string room, DocumentHandlers h);

  // PresenceView::Sink
  void presence_changed(const PresenceEvent& ev) override;
  void typing_changed(const TypingEvent&) override {}
  void fetch_presence(const std::string& room) override;

  // All below with mu_ held.
  void start_open(std::function<void(Result<DocumentOpened>)> done);
  void send_open(bool with_since);
  void on_opened_reply(std::uint64_t token, Result<Reply> r);
  void on_op_reply(const std::string& key, std::uint64_t gen, Result<Reply> r);
  void on_op_push(const Reply& r);
  void on_pdiff(PresenceDiff d);
  void on_connected(const std::string& client_id);
  void on_connection_lost();
  void on_remote_applied(const DocOp& op, const ot::operation& local);
  void applied_edit();
  void flush();
  void flush_cursor();
  void send_cursor(const CursorAt& c);
  void arm_cursor_refresh();
  void schedule_retry();
  void unregister();
  void check_synced();
  void check_cursors();
  void fail_open(const Error& e);
  void report(const Error& e);

  std::shared_ptr<Core> core_;
  Client& client_;
  const std::string room_;
  DocumentHandlers h_;
  mutable std::recursive_mutex mu_;

  DocumentState st_;
  PresenceView view_;
  Phase phase_ = Phase::idle;
  std::uint64_t open_token_ = 0;  // the `open` whose reply counts
  std::uint64_t gen_ = 0;         // connection generation (ops sent on an older one are moot)
  std::string self_;              // this connection's client id
  std::function<void(Result<DocumentOpened>)> first_done_;
  std::string failed_key_;        // the key of an operation refused with conflict once already

  struct WantedCursor {
    std::size_t pos = 0;
    std::optional<std::size_t> anchor;
  };
  std::optional<WantedCursor> cursor_;
  std::optional<CursorAt> cursor_sent_;  // the last published on this connection
  std::chrono::steady_clock::time_point cursor_sent_at_{};
  bool cursor_dirty_ = false;  // set_cursor() was called since the last publication
  bool cursor_timer_armed_ = false;
  bool connected_ = false;
  bool was_pending_ = false;
  bool retry_armed_ = false;
  std::vector<RemoteCursor> last_cursors_;
  std::vector<std::function<void()>> synced_waiters_;
  struct Timers;
  std::unique_ptr<Timers> timers_;
};

// The documents of one Client.
class Documents {
 public:
  struct Options {
    // How often a published cursor is refreshed while others' edits move the revision on
    // (so that late joiners can place it).
    std::chrono::milliseconds cursor_refresh{1000};
    // Retry delay after `rate_limited` / `unavailable`.
    std::chrono::milliseconds retry{500};
    // Server operations kept to place cursors that refer to an older revision.
    std::size_t keep_ops = 1000;
  };

  explicit Documents(Client& client);
  Documents(Client& client, Options opts);
  ~Documents();
  Documents(const Documents&) = delete;
  Documents& operator=(const Documents&) = delete;

  // Opens the document of `room` (`open`, sent once connected). `done` gets the first
  // `opened` or the refusal; later reopens go to handlers.on_opened (the first one too).
  // A room already open through this registry fails with `already_open`.
  std::shared_ptr<Document> open(std::string room, DocumentHandlers handlers = {},
                                 std::function<void(Result<DocumentOpened>)> done = {});

  Client& client() { return client_; }

 private:
  Client& client_;
  std::shared_ptr<Document::Core> core_;
};

// A blocking face of a Document for tests and tools: waits are bounded and throw
// ClientError(timeout) when they run out.
class BlockingDocument {
 public:
  using Duration = std::chrono::milliseconds;
  static constexpr Duration default_timeout{10'000};

  // Nothing is sent until open().
  BlockingDocument(Documents& docs, std::string room);
  ~BlockingDocument();
  BlockingDocument(const BlockingDocument&) = delete;
  BlockingDocument& operator=(const BlockingDocument&) = delete;

  DocumentOpened open(Duration timeout = default_timeout);
  bool edit(const ot::operation& op) { return doc().edit(op); }
  bool insert(std::size_t pos, std::string_view utf8) { return doc().insert(pos, utf8); }
  bool remove(std::size_t pos, std::size_t n) { return doc().remove(pos, n); }
  bool edit_with(const std::function<ot::operation(const ot::rope&)>& make) { return doc().edit_with(make); }
  // Waits until every local change is acknowledged.
  void wait_synced(Duration timeout = default_timeout);
  std::string text() const { return doc().text(); }
  std::uint64_t rev() const { return doc().rev(); }
  // Waits until pred(text) holds (checked at every change); returns that text.
  std::string wait_text(const std::function<bool(const std::string&)>& pred, Duration timeout = default_timeout);
  // Waits until the document is open on the current connection with nothing pending and its
  // revision is at least `rev`.
  void wait_rev(std::uint64_t rev, Duration timeout = default_timeout);
  void set_cursor(std::size_t pos, std::optional<std::size_t> anchor = std::nullopt) { doc().set_cursor(pos, anchor); }
  std::vector<RemoteCursor> remote_cursors() const { return doc().remote_cursors(); }
  std::vector<RemoteCursor> wait_cursors(const std::function<bool(const std::vector<RemoteCursor>&)>& pred,
                                         Duration timeout = default_timeout);
  // `opened` events (the first one included), in order.
  std::optional<DocumentOpened> next_opened(Duration timeout = default_timeout);
  std::vector<Error> errors();
  std::optional<Error> wait_error(const std::string& code, Duration timeout = default_timeout);
  std::size_t changes() const;  // remote operations applied so far
  void close(Duration timeout = default_timeout);

  Document& doc() const;
  std::shared_ptr<Document> handle() const { return doc_; }

 private:
  // What the callbacks record; shared with them, so that a late one finds it alive.
  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    std::deque<DocumentOpened> opened;
    std::vector<Error> errors;
    std::size_t changes = 0;
    std::uint64_t events = 0;  // raised by every callback
  };
  // Waits (bounded) until ready() holds, checking it after every event.
  bool wait_until(const std::function<bool()>& ready, Duration timeout);

  Documents& docs_;
  std::string room_;
  std::shared_ptr<Document> doc_;
  std::shared_ptr<Shared> s_ = std::make_shared<Shared>();
};

}  // namespace troupe::client

// A collaborative document as one client sees it: the classic OT client with one operation
// in flight. Pure logic (no I/O): the caller feeds it the server's replies and pushes and
// sends what it hands out.
//
//   server text ──(in flight)──▶ ──(buffer)──▶ local text
//
// The local text is the server text (at `rev`) with the in-flight operation and the buffer
// applied. A local edit is composed into the buffer, or becomes the in-flight operation when
// nothing is in flight. An incoming operation (rev + 1) is transformed over the in-flight
// operation and the buffer (they keep their inserts first at a tie: the server will accept
// them later), and they over it. An ack makes the buffer the next in-flight operation.
//
// Remote cursors come from presence states `{cursor: {rev, pos, anchor?}}`; each is kept at
// the current server revision (moved through every server operation, older ones through the
// kept log, newer ones parked until their revision arrives) and shown in the local text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/cpp/value.hpp"
#include "ot/rope.hpp"
#include "ot/text_operation.hpp"

namespace troupe::client {

// An operation the server accepted: an `op` push, or an item of a recovered `opened`.
struct doc_op {
  std::uint64_t rev = 0;
  ot::operation op;
  std::string user;
  std::string key;
};

// A cursor as published in a presence state: positions (code points) in the document at `rev`.
struct cursor_at {
  std::uint64_t rev = 0;
  std::size_t pos = 0;
  std::optional<std::size_t> anchor; // the other end of a selection
};

// Another connection's cursor, in the local text.
struct remote_cursor {
  std::string client;
  std::string user;
  std::size_t pos = 0;
  std::optional<std::size_t> anchor;
};

class document_state {
public:
  // What to send: `{t:"op", rev, op, key}`.
  struct submit {
    std::uint64_t rev = 0;
    ot::operation op;
    std::string key;
  };

  enum class outcome_kind {
    applied,  // a remote operation, applied to the local text
    acked,    // our in-flight operation (an ack, or a push / recovered op carrying its key)
    stale,    // already seen (rev <= ours), or an ack for an operation no longer in flight
    hole,     // it is ahead of rev + 1: reopen with since() to get what was missed
    mismatch, // it contradicts what we hold (does not fit, an ack for a rev already taken):
              // open afresh
  };

  struct applied {
    outcome_kind outcome = outcome_kind::stale;
    ot::operation local; // for `applied`: the operation as applied to the local text
  };

  // `key_prefix` makes the keys of this handle's operations unique (a random string);
  // `keep_ops`: how many server operations to keep for cursors that refer to an older rev.
  explicit document_state(std::string key_prefix, std::size_t keep_ops = 1000);

  // --- the server's side ---------------------------------------------------------------
  // An `opened` reply with `text`. The state starts over from it; pending local changes are
  // dropped (returns true if there were any) unless the reply is exactly where we stand
  // (same epoch, same rev, same text, and nothing was refused): then `*kept` is set.
  bool open_text(std::uint64_t rev, std::string epoch, std::string_view text, bool* kept = nullptr);
  // An `opened` reply with `ops` (recovered: true): each is applied like a push (the one with
  // the in-flight key acknowledges it); `applied` hears each remote one. False if they do
  // not lead from our rev to `rev` exactly (the caller then opens afresh, without since).
  bool open_recovered(
      std::uint64_t rev, const std::string& epoch, const std::vector<doc_op>& ops,
      const std::function<void(const doc_op&, const ot::operation& local)>& applied = {});
  // An `op` push.
  applied remote(const doc_op& op);
  // The `ack` of the operation sent with `key`.
  outcome_kind ack(const std::string& key, std::uint64_t rev);
  // The connection is gone (or the op request was lost): the in-flight operation is sent
  // again, with the same key, after the next `opened`.
  void connection_lost();
  // The in-flight operation must go out again as it is now (same key): after a timeout or
  // rate_limited.
  void resend() { sent_ = false; }
  // The server refused the in-flight operation for good (conflict: it no longer holds the
  // base revision; bad_request; forbidden). Nothing more is sent; the next open_text()
  // drops the pending local changes.
  void refused() { refused_ = true; }

  // --- the local side ----------------------------------------------------------------------
  // An edit made against the local text. False (and nothing changes) if it does not fit or
  // the document was never opened.
  bool edit(const ot::operation& op);
  // The in-flight operation if it has yet to be sent on this connection (it is then marked
  // sent). Call after every event while the document is open on a live connection.
  std::optional<submit> take_submit();

  // --- cursors ------------------------------------------------------------------------------
  // Sets (nullopt: clears) the cursor of another connection, from its presence state.
  void set_remote_cursor(const std::string& client, const std::string& user,
                         std::optional<cursor_at> c);
  void remove_remote_cursor(const std::string& client);
  void clear_remote_cursors();
  // Whether a cursor of `client` is known (placed or parked).
  bool has_remote_cursor(const std::string& client) const {
    return cursors_.count(client) != 0 || parked_.count(client) != 0;
  }
  // Every known remote cursor that refers to a revision reached, in the local text, by client.
  std::vector<remote_cursor> remote_cursors() const;
  // Cursors still waiting for their revision.
  std::size_t parked_cursors() const { return parked_.size(); }
  // Our cursor as it may be published: only while nothing is pending (then local positions
  // are server positions at rev()). Positions past the end are clamped.
  std::optional<cursor_at> own_cursor(std::size_t pos,
                                      std::optional<std::size_t> anchor = std::nullopt) const;
  // The same as a presence state map `{cursor: {rev, pos, anchor?}}`.
  std::optional<value> cursor_state(std::size_t pos,
                                    std::optional<std::size_t> anchor = std::nullopt) const;

  // --- what it holds --------------------------------------------------------------------------
  bool opened() const { return opened_; }
  std::uint64_t rev() const { return rev_; }
  const std::string& epoch() const { return epoch_; }
  const ot::rope& local() const { return local_; }
  const ot::rope& server() const { return server_; }
  std::string text() const { return local_.to_string(); }
  std::size_t length() const { return local_.size(); }
  // Local changes the server has not acknowledged (in flight or buffered).
  bool pending() const { return inflight_.has_value() || buffer_.has_value(); }
  bool in_flight() const { return inflight_.has_value(); }
  bool buffered() const { return buffer_.has_value(); }
  bool is_refused() const { return refused_; }
  const std::string* inflight_key() const { return inflight_ ? &inflight_->key : nullptr; }
  // The server operations kept (for cursors).
  std::size_t kept_ops() const { return log_.size(); }
  // How many operations this handle has put in flight (keys made) so far.
  std::uint64_t ops_made() const { return counter_; }

private:
  struct in_flight_op {
    ot::operation op; // against the server text at rev_ (transformed as ops arrive)
    std::string key;
    std::uint64_t made_at = 0; // the rev it was first sent against (diagnostics)
  };
  struct stored_cursor {
    std::string user;
    cursor_at at;
  };

  std::string next_key();
  void promote_buffer();
  // A server operation at rev_ + 1 (remote, or our own acknowledged): the server text, the
  // kept log and the cursors move on.
  void advance(const ot::operation& op);
  std::size_t through_log(std::size_t pos, std::uint64_t from_rev) const;
  void place(const std::string& client, stored_cursor s);
  void reset_to(std::uint64_t rev, std::string epoch, std::string_view text);

  std::string prefix_;
  std::uint64_t counter_ = 0;
  std::size_t keep_;

  bool opened_ = false;
  std::uint64_t rev_ = 0;
  std::string epoch_;
  ot::rope server_;
  ot::rope local_;
  std::optional<in_flight_op> inflight_;
  bool sent_ = false;
  bool refused_ = false;
  std::optional<ot::operation> buffer_;
  std::deque<ot::operation> log_; // server operations log_rev_ + 1 … rev_

  std::map<std::string, stored_cursor> cursors_; // at rev_
  std::map<std::string, stored_cursor> parked_;  // at a rev above rev_
};

// The cursor in a presence state, if it holds a well-formed one.
std::optional<cursor_at> parse_cursor(const value& state);

} // namespace troupe::client

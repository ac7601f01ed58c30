// The SQLite store's loads: a room's message log and its document, read through the reader
// connection in one read transaction each, checked as they are read.
#include "store/sqlite_store.hpp"

#include <algorithm>

#include "ot/utf8.hpp"
#include "store/sqlite_access.hpp"
#include "store/sqlite_rows.hpp"

namespace troupe::store {

using namespace sqlite;

loaded<core::history_log> sqlite_store::load_log(std::string_view room, std::size_t capacity) {
  auto fail = [&](const std::string& why) {
    return loaded<core::history_log>{std::nullopt, "room " + std::string(room) + ": " + why};
  };
  std::lock_guard lock(read_mutex_);
  auto& r = *read_;
  read_transaction transaction(reader_, r.begin, r.rollback);
  if (!transaction.error().empty()) return fail(transaction.error());

  std::string epoch;
  std::uint64_t top = 0;
  {
    query row(r.select_room, room);
    if (row.next()) {
      epoch = row.text(0);
      const auto seq = row.count(1);
      if (!seq || epoch.empty()) return fail("its sequence number is damaged in the store");
      top = *seq;
    } else if (row.failed()) {
      return fail(row.error());
    }
  }
  if (epoch.empty()) {
    query any(r.select_messages, room, std::int64_t{1});
    if (any.next()) return fail("it has messages but no sequence number: the store is damaged");
    if (any.failed()) return fail(any.error());
    return {core::history_log(capacity, epoch_), {}};
  }

  // Newest first: the run of consecutive seqs ending at the top one (expiry by age may have
  // deleted any message; older ones before a gap are not kept).
  std::vector<core::stored_message> kept;
  if (capacity > 0) {
    query rows(r.select_messages, room, row_limit(capacity));
    while (rows.next()) {
      const auto seq = rows.count(0);
      const auto ts = rows.count(1);
      if (!seq || !ts || rows.type(3) != SQLITE_BLOB)
        return fail("a message is damaged in the store");
      if (*seq > top)
        return fail("message " + std::to_string(*seq) + " is newer than its sequence number " +
                    std::to_string(top) + ": the store is damaged");
      if (*seq != (kept.empty() ? top : kept.back().seq - 1) || *seq == 0) break;
      // The bytes go to clients as they are: they must be this message's `msg` map.
      if (!is_msg_map(rows.bytes(3), *seq))
        return fail("message " + std::to_string(*seq) + " is damaged in the store");
      protocol::frame_builder builder;
      builder.write(rows.bytes(3));
      kept.push_back({*seq, std::string(rows.text(2)), builder.finish(), *ts});
    }
    if (rows.failed()) return fail(rows.error());
  }

  core::history_log log(capacity, std::move(epoch), kept.empty() ? top : kept.back().seq - 1);
  for (auto it = kept.rbegin(); it != kept.rend(); ++it)
    log.append(std::move(*it));
  if (log.seq() != top)
    return fail("its messages do not end at its sequence number: the store is damaged");
  return {std::move(log), {}};
}

loaded<core::document_sequencer> sqlite_store::load_document(std::string_view room,
                                                             std::size_t log_capacity) {
  auto fail = [&](const std::string& why) {
    return loaded<core::document_sequencer>{std::nullopt,
                                            "document of room " + std::string(room) + ": " + why};
  };
  auto missing = [&](std::uint64_t rev) {
    return fail("operation " + std::to_string(rev) + " is missing: the store is damaged");
  };
  std::lock_guard lock(read_mutex_);
  auto& r = *read_;
  read_transaction transaction(reader_, r.begin, r.rollback);
  if (!transaction.error().empty()) return fail(transaction.error());

  std::string epoch;
  std::string text;
  std::uint64_t snapshot_rev = 0;
  {
    query row(r.select_document, room);
    if (row.next()) {
      epoch = row.text(0);
      const auto rev = row.count(1);
      if (!rev || epoch.empty() || row.type(2) != SQLITE_TEXT)
        return fail("its snapshot is damaged in the store");
      snapshot_rev = *rev;
      text = row.text(2);
    } else if (row.failed()) {
      return fail(row.error());
    }
  }
  if (epoch.empty()) {
    query any(r.select_operations, room, std::int64_t{-1});
    if (any.next()) return fail("it has operations but no text: the store is damaged");
    if (any.failed()) return fail(any.error());
    return {core::document_sequencer(log_capacity, epoch_), {}};
  }
  if (!ot::valid_utf8(text))
    return fail("its text at rev " + std::to_string(snapshot_rev) +
                " is not valid UTF-8: the store is damaged");

  // The kept log up to the snapshot (at most the capacity), then the operations since,
  // replayed onto the text.
  const std::size_t capacity = std::max<std::size_t>(log_capacity, 1);
  const std::uint64_t from = snapshot_rev > capacity ? snapshot_rev - capacity : 0;
  std::vector<core::logged_operation> history;
  std::optional<core::document_sequencer> document;
  // A row holds the `ops` operations up to its `rev`; the first row may begin at or before
  // `from` (a run row), and only its operations after `from` are taken.
  std::vector<run_entry> entries;
  auto take =
      [&](core::logged_operation accepted) -> std::optional<loaded<core::document_sequencer>> {
    const std::uint64_t rev = accepted.rev;
    if (rev <= from) return std::nullopt;
    if (rev <= snapshot_rev) {
      if (!history.empty() && rev != history.back().rev + 1) return missing(history.back().rev + 1);
      history.push_back(std::move(accepted));
      return std::nullopt;
    }
    if (!document) {
      if (!history.empty() && history.back().rev != snapshot_rev)
        return missing(history.back().rev + 1);
      document.emplace(log_capacity, epoch, snapshot_rev, text, std::move(history));
    }
    if (rev != document->rev() + 1) return missing(document->rev() + 1);
    if (!document->replay(std::move(accepted)))
      return fail("operation " + std::to_string(rev) +
                  " does not fit the text: the store is damaged");
    return std::nullopt;
  };
  query rows(r.select_operations, room, from);
  while (rows.next()) {
    const auto rev = rows.count(0);
    const auto count = rows.count(4);
    if (!rev || !count || *count == 0 || *count > *rev || rows.type(3) != SQLITE_BLOB)
      return fail("an operation is damaged in the store");
    if (*count == 1) {
      auto decoded = decode_operation(rows.bytes(3));
      if (!decoded.op)
        return fail("operation " + std::to_string(*rev) + " cannot be read (" + decoded.error +
                    "): the store is damaged");
      if (auto failed = take(
              {*rev, std::move(*decoded.op), std::string(rows.text(1)), std::string(rows.text(2))}))
        return std::move(*failed);
      continue;
    }
    const std::uint64_t first = *rev - *count + 1;
    entries.clear();
    if (auto why = decode_run(rows.bytes(3), *count, entries); !why.empty())
      return fail("operations " + std::to_string(first) + " to " + std::to_string(*rev) +
                  " cannot be read (" + why + "): the store is damaged");
    const std::string user(rows.text(1));
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (auto failed =
              take({first + i, std::move(entries[i].op), user, std::move(entries[i].key)}))
        return std::move(*failed);
  }
  if (rows.failed()) return fail(rows.error());
  if (!document) {
    if (!history.empty() && history.back().rev != snapshot_rev)
      return missing(history.back().rev + 1);
    document.emplace(log_capacity, std::move(epoch), snapshot_rev, text, std::move(history));
  }
  return {std::move(document), {}};
}

} // namespace troupe::store

#pragma once

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

#include "clients/cpp/documents.hpp"

namespace troupe::client {

// A blocking face of a `document` for tests and tools: waits are bounded and throw
// client_error(timeout) when they run out.
class blocking_document {
public:
  using duration = std::chrono::milliseconds;
  static constexpr duration default_timeout{10'000};

  // Nothing is sent until open().
  blocking_document(documents& docs, std::string room);
  ~blocking_document();
  blocking_document(const blocking_document&) = delete;
  blocking_document& operator=(const blocking_document&) = delete;

  document_opened open(duration timeout = default_timeout);
  bool edit(const ot::operation& op) { return doc().edit(op); }
  bool insert(std::size_t pos, std::string_view utf8) { return doc().insert(pos, utf8); }
  bool remove(std::size_t pos, std::size_t n) { return doc().remove(pos, n); }
  bool edit_with(const std::function<ot::operation(const ot::rope&)>& make) {
    return doc().edit_with(make);
  }
  // Waits until every local change is acknowledged.
  void wait_synced(duration timeout = default_timeout);
  std::string text() const { return doc().text(); }
  std::uint64_t rev() const { return doc().rev(); }
  // Waits until pred(text) holds (checked at every change); returns that text.
  std::string wait_text(const std::function<bool(const std::string&)>& pred,
                        duration timeout = default_timeout);
  // Waits until the document is open on the current connection with nothing pending and its
  // revision is at least `rev`.
  void wait_rev(std::uint64_t rev, duration timeout = default_timeout);
  void set_cursor(std::size_t pos, std::optional<std::size_t> anchor = std::nullopt) {
    doc().set_cursor(pos, anchor);
  }
  std::vector<remote_cursor> remote_cursors() const { return doc().remote_cursors(); }
  std::vector<remote_cursor>
  wait_cursors(const std::function<bool(const std::vector<remote_cursor>&)>& pred,
               duration timeout = default_timeout);
  // `opened` events (the first one included), in order.
  std::optional<document_opened> next_opened(duration timeout = default_timeout);
  std::vector<error> errors();
  std::optional<error> wait_error(const std::string& code, duration timeout = default_timeout);
  std::size_t changes() const; // remote operations applied so far
  void close(duration timeout = default_timeout);

  document& doc() const;
  std::shared_ptr<document> handle() const { return doc_; }

private:
  // What the callbacks record; shared with them, so that a late one finds it alive.
  struct shared {
    std::mutex m;
    std::condition_variable cv;
    std::deque<document_opened> opened;
    std::vector<error> errors;
    std::size_t changes = 0;
    std::uint64_t events = 0; // raised by every callback
  };
  // Waits (bounded) until ready() holds, checking it after every event.
  bool wait_until(const std::function<bool()>& ready, duration timeout);

  documents& docs_;
  std::string room_;
  std::shared_ptr<document> doc_;
  std::shared_ptr<shared> s_ = std::make_shared<shared>();
};

} // namespace troupe::client

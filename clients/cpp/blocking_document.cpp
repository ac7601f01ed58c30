#include "clients/cpp/blocking_document.hpp"

#include <future>

namespace troupe::client {

using clock = std::chrono::steady_clock;

blocking_document::blocking_document(documents& docs, std::string room)
    : docs_(docs), room_(std::move(room)) {}

blocking_document::~blocking_document() {
  if (doc_) doc_->close();
}

document& blocking_document::doc() const {
  if (!doc_) throw client_error(error{errc::closed, "the document " + room_ + " was not opened"});
  return *doc_;
}

document_opened blocking_document::open(duration timeout) {
  auto s = s_;
  auto bump = [s](auto&& f) {
    std::lock_guard<std::mutex> l(s->m);
    f(*s);
    ++s->events;
    s->cv.notify_all();
  };
  document_handlers h;
  h.on_change = [bump](const document_change&) { bump([](shared& x) { ++x.changes; }); };
  h.on_opened = [bump](const document_opened& ev) {
    bump([&](shared& x) { x.opened.push_back(ev); });
  };
  h.on_cursors = [bump](const std::vector<remote_cursor>&) { bump([](shared&) {}); };
  h.on_presence = [bump](const presence_event&) { bump([](shared&) {}); };
  h.on_error = [bump](const error& e) { bump([&](shared& x) { x.errors.push_back(e); }); };
  h.on_synced = [bump] { bump([](shared&) {}); };
  auto p = std::make_shared<std::promise<result<document_opened>>>();
  auto f = p->get_future();
  doc_ = docs_.open(room_, std::move(h),
                    [p](result<document_opened> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw client_error(error{errc::timeout, "open " + room_ + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw client_error(r.error());
  return r.value();
}

bool blocking_document::wait_until(const std::function<bool()>& ready, duration timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard<std::mutex> l(s_->m);
      seen = s_->events;
    }
    if (ready()) return true;
    std::unique_lock<std::mutex> l(s_->m);
    // Woken by every callback; the slice catches changes no callback reports (local edits
    // by another thread, an ack with nothing else pending).
    const auto slice = std::min(deadline, clock::now() + std::chrono::milliseconds(50));
    s_->cv.wait_until(l, slice, [&] { return s_->events != seen; });
    if (clock::now() >= deadline) {
      l.unlock();
      return ready();
    }
  }
}

void blocking_document::wait_synced(duration timeout) {
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  doc().when_synced([p] { p->set_value(); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw client_error(error{errc::timeout, "document " + room_ + " not synced in time (rev " +
                                                std::to_string(doc().rev()) + ")"});
}

std::string blocking_document::wait_text(const std::function<bool(const std::string&)>& pred,
                                         duration timeout) {
  std::string t;
  if (!wait_until([&] { return pred(t = doc().text()); }, timeout))
    throw client_error(
        error{errc::timeout,
              "document " + room_ + " text not as expected in time; last: " + t.substr(0, 200)});
  return t;
}

void blocking_document::wait_rev(std::uint64_t rev, duration timeout) {
  auto& d = doc();
  if (!wait_until([&] { return d.live() && !d.pending() && d.rev() >= rev; }, timeout))
    throw client_error(error{errc::timeout, "document " + room_ + " did not reach rev " +
                                                std::to_string(rev) + " in time (at " +
                                                std::to_string(d.rev()) + ")"});
}

std::vector<remote_cursor>
blocking_document::wait_cursors(const std::function<bool(const std::vector<remote_cursor>&)>& pred,
                                duration timeout) {
  std::vector<remote_cursor> c;
  if (!wait_until([&] { return pred(c = doc().remote_cursors()); }, timeout)) {
    std::string desc;
    for (const auto& x : c)
      desc += " " + x.user + "/" + x.client + "@" + std::to_string(x.pos) +
              (x.anchor ? "-" + std::to_string(*x.anchor) : "");
    throw client_error(error{errc::timeout, "remote cursors of " + room_ +
                                                " not as expected in time; last:" + desc});
  }
  return c;
}

std::optional<document_opened> blocking_document::next_opened(duration timeout) {
  std::unique_lock<std::mutex> l(s_->m);
  if (!s_->cv.wait_for(l, timeout, [&] { return !s_->opened.empty(); })) return std::nullopt;
  auto ev = std::move(s_->opened.front());
  s_->opened.pop_front();
  return ev;
}

std::vector<error> blocking_document::errors() {
  std::lock_guard<std::mutex> l(s_->m);
  return s_->errors;
}

std::optional<error> blocking_document::wait_error(const std::string& code, duration timeout) {
  std::unique_lock<std::mutex> l(s_->m);
  std::optional<error> found;
  s_->cv.wait_for(l, timeout, [&] {
    for (const auto& e : s_->errors)
      if (e.code == code) {
        found = e;
        return true;
      }
    return false;
  });
  return found;
}

std::size_t blocking_document::changes() const {
  std::lock_guard<std::mutex> l(s_->m);
  return s_->changes;
}

void blocking_document::close(duration timeout) {
  auto p = std::make_shared<std::promise<result<nothing>>>();
  auto f = p->get_future();
  doc().close([p](result<nothing> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw client_error(error{errc::timeout, "close " + room_ + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw client_error(r.error());
}

} // namespace troupe::client

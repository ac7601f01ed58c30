#pragma once
// hiredis's async API drives no I/O itself: an adapter gives it read/write readiness. hiredis
// ships adapters for ae, libev, libevent, libuv, ..., none for Asio; this is one, in the shape
// of adapters/libuv.h. It watches the context's socket with a stream_descriptor that does not
// own it (hiredis closes it) and calls redisAsyncHandleRead/Write when async_wait says so.
//
// Lifetime: the watcher is shared by the context (ev.data, dropped by hiredis's cleanup hook)
// and by each pending async_wait, so a wait that completes after cleanup, or after hiredis freed
// the context inside the very HandleRead that it triggered (EOF, a disconnect), finds a live
// watcher whose context pointer is null and does nothing.
//
// Every call into hiredis for this context must run on `executor` (give it a strand).

#include <utility> // before Boost 1.74's Asio
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <hiredis/async.h>

namespace troupe::cluster {

namespace detail {

class hiredis_asio_watcher : public std::enable_shared_from_this<hiredis_asio_watcher> {
public:
  hiredis_asio_watcher(redisAsyncContext* ac, const boost::asio::any_io_executor& ex)
      : ac_(ac), socket_(ex, ac->c.fd) {}
  hiredis_asio_watcher(const hiredis_asio_watcher&) = delete;
  hiredis_asio_watcher& operator=(const hiredis_asio_watcher&) = delete;
  // Never close hiredis's socket: only stop watching it.
  ~hiredis_asio_watcher() { release(); }

  // The hooks hiredis calls (idempotent, as it requires).
  static void add_read(void* p) { static_cast<hiredis_asio_watcher*>(p)->want(true, true); }
  static void del_read(void* p) { static_cast<hiredis_asio_watcher*>(p)->want(true, false); }
  static void add_write(void* p) { static_cast<hiredis_asio_watcher*>(p)->want(false, true); }
  static void del_write(void* p) { static_cast<hiredis_asio_watcher*>(p)->want(false, false); }
  static void cleanup(void* p) {
    auto* w = static_cast<hiredis_asio_watcher*>(p);
    w->ac_ = nullptr; // the context is being freed: no wait may touch it any more
    w->want_read_ = w->want_write_ = false;
    w->release(); // pending waits complete with operation_aborted
    // Drop the context's reference last: this may destroy the watcher.
    std::shared_ptr<hiredis_asio_watcher> last = std::move(w->self_);
  }

  std::shared_ptr<hiredis_asio_watcher> self_; // the context's reference

private:
  void want(bool read, bool on) {
    (read ? want_read_ : want_write_) = on;
    // Turning a direction off leaves its wait pending: it is ignored when it completes, which
    // is cheaper than cancelling (cancel() would cancel the other direction too).
    if (on && ac_ && !(read ? reading_ : writing_)) wait(read);
  }

  void wait(bool read) {
    (read ? reading_ : writing_) = true;
    using base = boost::asio::posix::descriptor_base;
    socket_.async_wait(read ? base::wait_read : base::wait_write,
                       [self = shared_from_this(), read](const boost::system::error_code& ec) {
                         self->ready(read, ec);
                       });
  }

  void ready(bool read, const boost::system::error_code& ec) {
    (read ? reading_ : writing_) = false;
    if (!ac_ || ec == boost::asio::error::operation_aborted) return;
    if (!(read ? want_read_ : want_write_)) return;
    // Any other error: hiredis's own read or write finds it and disconnects. hiredis re-arms
    // through add_read/add_write inside these calls, and may free the context (cleanup).
    if (read)
      redisAsyncHandleRead(ac_);
    else
      redisAsyncHandleWrite(ac_);
  }

  void release() {
    if (socket_.is_open()) socket_.release();
  }

  redisAsyncContext* ac_;
  boost::asio::posix::stream_descriptor socket_;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false; // a wait of that direction is pending
};

} // namespace detail

/// Attaches `ac` (fresh from redisAsyncConnect, no error) to `executor`. Returns REDIS_OK, or
/// REDIS_ERR if it already has an event library or its socket cannot be watched. Attach before
/// redisAsyncSetConnectCallback: that call already asks for the first write event.
inline int hiredis_asio_attach(redisAsyncContext* ac,
                               const boost::asio::any_io_executor& executor) {
  if (ac->ev.data != nullptr || ac->c.fd < 0) return REDIS_ERR;
  std::shared_ptr<detail::hiredis_asio_watcher> watcher;
  try {
    watcher = std::make_shared<detail::hiredis_asio_watcher>(ac, executor);
  } catch (const std::exception&) {
    return REDIS_ERR;
  }
  watcher->self_ = watcher;
  using w = detail::hiredis_asio_watcher;
  ac->ev.addRead = &w::add_read;
  ac->ev.delRead = &w::del_read;
  ac->ev.addWrite = &w::add_write;
  ac->ev.delWrite = &w::del_write;
  ac->ev.cleanup = &w::cleanup;
  ac->ev.data = watcher.get();
  return REDIS_OK;
}

} // namespace troupe::cluster

#include "cluster/redis_connection.hpp"

#include <atomic>
#include <chrono>
#include <deque>
#include <strings.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster/redis_link.hpp"

namespace troupe::cluster {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// Commands that would turn the connection into a push stream.
bool refused_here(const std::string& name) {
  for (const char* bad : {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                          "sunsubscribe", "monitor"})
    if (strcasecmp(name.c_str(), bad) == 0) return true;
  return false;
}

} // namespace

class redis_connection::impl final : public detail::redis_link {
public:
  impl(const asio::any_io_executor& ex, redis_url url, redis_options options)
      : redis_link(ex, std::move(url), options, true), timeout_timer_(strand_) {}

  ~impl() override { stop_link(); } // the NULL replies find no one to tell (detached_)

  state_handler state_handler_;
  std::atomic<bool> up_{false};
  std::atomic<bool> detached_{false}; // the owner is gone: call nothing any more
  bool closed_ = false;

  void start() { start_link(); }

  void close(bool notify) {
    if (!notify) detached_ = true;
    closed_ = true;
    up_ = false;
    timeout_timer_.cancel();
    stop_link(); // in-flight commands get their NULL reply now: closed
  }

  void send(const std::vector<std::string>& argv, reply_handler&& handler) {
    if (closed_) return complete_later(std::move(handler), redis_errc::closed);
    if (argv.empty() || refused_here(argv[0]))
      return complete_later(std::move(handler), redis_errc::invalid_command);
    redisAsyncContext* ac = up_ ? context() : nullptr;
    if (!ac) return complete_later(std::move(handler), redis_errc::not_connected);

    std::vector<const char*> ptrs(argv.size());
    std::vector<size_t> lens(argv.size());
    for (std::size_t i = 0; i < argv.size(); ++i) {
      ptrs[i] = argv[i].data();
      lens[i] = argv[i].size();
    }
    auto* p = new pending{std::move(handler), steady::now() + options_.command_timeout, this};
    // hiredis copies the arguments into its output buffer here.
    if (redisAsyncCommandArgv(ac, &impl::reply_callback, p, static_cast<int>(argv.size()),
                              ptrs.data(), lens.data()) != REDIS_OK) {
      complete_later(std::move(p->handler), redis_errc::link_lost);
      delete p;
      return;
    }
    inflight_.push_back(p);
    if (!timer_armed_) arm_timeout();
  }

private:
  struct pending {
    reply_handler handler;
    steady::time_point deadline;
    impl* owner;
    bool timed_out = false;
  };

  void on_link_open() override {
    link_ready();
    up_ = true;
    report(link_state::up, "");
  }

  void on_link_lost(std::string_view reason, bool report_it) override {
    up_ = false;
    if (report_it) report(link_state::down, reason);
  }

  void report(link_state state, std::string_view reason) {
    if (closed_ || !state_handler_) return;
    post_user([this, state, reason = std::string(reason)] { state_handler_(state, reason); });
  }

  // User code runs from the strand's queue, never inside hiredis or inside send().
  template <class F>
  void post_user(F&& f) {
    auto self = weak_from_this().lock(); // null while being destroyed: tell no one
    if (!self || detached_) return;
    asio::post(strand_, [self, f = std::forward<F>(f)]() mutable {
      if (!static_cast<impl*>(self.get())->detached_) f();
    });
  }

  void complete_later(reply_handler&& handler, redis_errc e) {
    if (!handler) return;
    post_user([h = std::move(handler), e]() mutable { h(make_error_code(e), {}); });
  }

  static void reply_callback(redisAsyncContext*, void* reply, void* privdata) {
    std::unique_ptr<pending> p(static_cast<pending*>(privdata));
    impl* self = p->owner;
    // Replies come in the order the commands went: this is the oldest in flight.
    if (!self->inflight_.empty() && self->inflight_.front() == p.get()) self->inflight_.pop_front();
    if (!p->handler) return;
    if (!reply) {
      // The context is going: the link broke, timed out, or was closed.
      self->up_ = false;
      self->complete_later(std::move(p->handler), self->closed_  ? redis_errc::closed
                                                  : p->timed_out ? redis_errc::timeout
                                                                 : redis_errc::link_lost);
      return;
    }
    self->post_user([h = std::move(p->handler), r = redis_reply::from(*static_cast<redisReply*>(
                                                    reply))]() mutable { h({}, std::move(r)); });
  }

  // One timer for the oldest command in flight: replies are in order, so if it is on time,
  // so far everything is.
  void arm_timeout() {
    if (inflight_.empty()) {
      timer_armed_ = false;
      return;
    }
    timer_armed_ = true;
    timeout_timer_.expires_at(inflight_.front()->deadline);
    timeout_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      auto* me = static_cast<impl*>(self.get());
      me->timer_armed_ = false;
      if (ec || me->closed_) return;
      if (!me->inflight_.empty() && me->inflight_.front()->deadline <= steady::now()) {
        me->inflight_.front()->timed_out = true;
        me->up_ = false;
        me->break_link("no reply from Redis within the command timeout");
        return;
      }
      me->arm_timeout();
    });
  }

  std::deque<pending*> inflight_; // owned by hiredis's callbacks: each deletes its own
  asio::steady_timer timeout_timer_;
  bool timer_armed_ = false;
};

redis_connection::redis_connection(const asio::any_io_executor& executor, redis_url url,
                                   redis_options options)
    : impl_(std::make_shared<impl>(executor, std::move(url), options)) {}

redis_connection::~redis_connection() {
  impl_->detached_ = true;
  asio::dispatch(impl_->strand(), [self = impl_] { self->close(false); });
}

void redis_connection::on_state(state_handler handler) {
  impl_->state_handler_ = std::move(handler);
}

void redis_connection::start() {
  asio::dispatch(impl_->strand(), [self = impl_] { self->start(); });
}

void redis_connection::close() {
  asio::dispatch(impl_->strand(), [self = impl_] { self->close(true); });
}

bool redis_connection::is_up() const noexcept { return impl_->up_; }

void redis_connection::command(std::vector<std::string> argv, reply_handler handler) {
  asio::dispatch(impl_->strand(),
                 [self = impl_, argv = std::move(argv), handler = std::move(handler)]() mutable {
                   self->send(argv, std::move(handler));
                 });
}

void redis_connection::eval_script(const redis_script& script, std::vector<std::string> keys,
                                   std::vector<std::string> args, reply_handler handler) {
  // Shared, not copied: kept for a NOSCRIPT retry without copying the arguments per call.
  auto argv = std::make_shared<std::vector<std::string>>();
  argv->reserve(3 + keys.size() + args.size());
  argv->push_back("EVALSHA");
  argv->push_back(script.sha1());
  argv->push_back(std::to_string(keys.size()));
  for (auto& k : keys)
    argv->push_back(std::move(k));
  for (auto& a : args)
    argv->push_back(std::move(a));

  asio::dispatch(impl_->strand(), [self = impl_, argv, text = script.shared_text(),
                                   handler = std::move(handler)]() mutable {
    self->send(*argv, [self, text, argv, handler = std::move(handler)](std::error_code ec,
                                                                       redis_reply reply) mutable {
      if (ec || !reply.is_error() || !reply.str.starts_with("NOSCRIPT"))
        return handler(ec, std::move(reply));
      // SCRIPT LOAD then EVALSHA, back to back: the load's outcome is known before the
      // retry's reply, and a script that does not compile is reported as the load's error.
      auto load_failure = std::make_shared<std::pair<std::error_code, redis_reply>>();
      self->send({"SCRIPT", "LOAD", *text}, [load_failure](std::error_code ec, redis_reply r) {
        if (ec || r.is_error()) *load_failure = {ec, std::move(r)};
      });
      self->send(*argv, [load_failure, argv, handler = std::move(handler)](
                            std::error_code ec, redis_reply reply) mutable {
        if (load_failure->first || load_failure->second.is_error())
          return handler(load_failure->first, std::move(load_failure->second));
        handler(ec, std::move(reply));
      });
    });
  });
}

asio::strand<asio::any_io_executor> redis_connection::executor() const { return impl_->strand(); }

} // namespace troupe::cluster

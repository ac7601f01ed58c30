#include "cluster/redis_subscriber.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <strings.h>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster/redis_link.hpp"

namespace troupe::cluster {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

class redis_subscriber::impl final : public detail::redis_link {
public:
  impl(const asio::any_io_executor& ex, redis_url url, redis_options options)
      : redis_link(ex, std::move(url), options, false), confirm_timer_(strand_) {}

  ~impl() override { stop_link(); }

  message_handler message_handler_;
  event_handler event_handler_;
  std::atomic<bool> up_{false};
  std::atomic<bool> detached_{false};
  bool closed_ = false;

  void start() { start_link(); }

  void close(bool notify) {
    if (!notify) detached_ = true;
    closed_ = true;
    up_ = false;
    confirm_timer_.cancel();
    stop_link();
    for (auto& [name, c] : channels_)
      fail_waiters(c, redis_errc::closed);
    channels_.clear();
    awaiting_.clear();
  }

  void subscribe(std::string&& name, subscribed_handler&& done) {
    if (closed_) return complete_later(std::move(done), redis_errc::closed);
    auto [it, fresh] = channels_.try_emplace(name);
    channel& c = it->second;
    ++c.refs;
    if (c.confirmed) return complete_later(std::move(done), {});
    if (!context()) return complete_later(std::move(done), redis_errc::not_connected);
    if (done) c.waiters.push_back(std::move(done));
    if (fresh) send_subscribe({&it->first});
  }

  void unsubscribe(const std::string& name) {
    auto it = channels_.find(name);
    if (it == channels_.end() || --it->second.refs > 0) return;
    fail_waiters(it->second, redis_errc::closed);
    // SUBSCRIBE went on this link (confirmed or awaited): undo it there.
    const bool sent = it->second.confirmed || awaiting_.erase(name) > 0;
    channels_.erase(it);
    if (sent && context()) {
      const char* argv[] = {"UNSUBSCRIBE", name.data()};
      const size_t len[] = {11, name.size()};
      // No callback: hiredis routes the unsubscribe reply to the channel's own callback.
      redisAsyncCommandArgv(context(), nullptr, nullptr, 2, argv, len);
    }
    if (resyncing_ && awaiting_.empty()) finish_resync();
  }

private:
  struct channel {
    unsigned refs = 0;
    bool confirmed = false; // on the current link
    std::vector<subscribed_handler> waiters;
  };

  void on_link_open() override {
    std::vector<const std::string*> names;
    names.reserve(channels_.size());
    for (auto& [name, c] : channels_)
      names.push_back(&name);
    resyncing_ = true;
    if (names.empty()) return finish_resync();
    // Batches keep each command (and Redis's work per command) bounded.
    constexpr std::size_t batch = 512;
    for (std::size_t i = 0; i < names.size(); i += batch)
      send_subscribe({names.begin() + i, names.begin() + std::min(names.size(), i + batch)});
  }

  void on_link_lost(std::string_view reason, bool report_it) override {
    up_ = false;
    resyncing_ = false;
    awaiting_.clear();
    confirm_timer_.cancel();
    for (auto& [name, c] : channels_) {
      c.confirmed = false;
      fail_waiters(c, redis_errc::link_lost);
    }
    if (report_it) report(event::down, reason);
  }

  void finish_resync() {
    resyncing_ = false;
    link_ready();
    up_ = true;
    report(ever_up_ ? event::resubscribed : event::up, "");
    ever_up_ = true;
  }

  void send_subscribe(const std::vector<const std::string*>& names) {
    std::vector<const char*> argv{"SUBSCRIBE"};
    std::vector<size_t> lens{9};
    const auto deadline = steady::now() + options_.command_timeout;
    for (const std::string* n : names) {
      argv.push_back(n->data());
      lens.push_back(n->size());
      awaiting_[*n] = deadline;
    }
    redisAsyncCommandArgv(context(), &impl::pubsub_callback, this, static_cast<int>(argv.size()),
                          argv.data(), lens.data());
    if (!timer_armed_) arm_confirm_timer();
  }

  // Every reply of this link: hiredis routes each channel's subscribe, unsubscribe and
  // message replies to the callback given with its SUBSCRIBE.
  static void pubsub_callback(redisAsyncContext*, void* reply, void* privdata) {
    auto* self = static_cast<impl*>(privdata);
    auto* r = static_cast<redisReply*>(reply);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return; // NULL: the link is going
    const redisReply* kind = r->element[0];
    const redisReply* name = r->element[1];
    if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING) return;
    std::string channel_name(name->str, name->len);
    if (strcasecmp(kind->str, "message") == 0) {
      const redisReply* payload = r->element[2];
      if (payload->type != REDIS_REPLY_STRING || !self->channels_.contains(channel_name)) return;
      self->post_user([self, channel_name = std::move(channel_name),
                       payload = std::string(payload->str, payload->len)] {
        if (self->message_handler_) self->message_handler_(channel_name, payload);
      });
    } else if (strcasecmp(kind->str, "subscribe") == 0) {
      self->confirmed(channel_name);
    }
  }

  void confirmed(const std::string& name) {
    if (awaiting_.erase(name) == 0) return; // unsubscribed meanwhile, or a stale link's
    auto it = channels_.find(name);
    if (it != channels_.end()) {
      it->second.confirmed = true;
      for (auto& w : it->second.waiters)
        complete_later(std::move(w), {});
      it->second.waiters.clear();
    }
    if (resyncing_ && awaiting_.empty()) finish_resync();
  }

  // One timer for the oldest unconfirmed SUBSCRIBE: Redis answers in order, so a late one
  // means a stuck link.
  void arm_confirm_timer() {
    if (awaiting_.empty()) {
      timer_armed_ = false;
      return;
    }
    auto oldest = std::min_element(awaiting_.begin(), awaiting_.end(),
                                   [](auto& a, auto& b) { return a.second < b.second; });
    timer_armed_ = true;
    confirm_timer_.expires_at(oldest->second);
    confirm_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      auto* me = static_cast<impl*>(self.get());
      me->timer_armed_ = false;
      if (ec || me->closed_) return;
      for (auto& [name, deadline] : me->awaiting_)
        if (deadline <= steady::now())
          return me->break_link("no SUBSCRIBE confirmation from Redis within the timeout");
      me->arm_confirm_timer();
    });
  }

  void fail_waiters(channel& c, redis_errc e) {
    for (auto& w : c.waiters)
      complete_later(std::move(w), e);
    c.waiters.clear();
  }

  void report(event e, std::string_view reason) {
    if (closed_) return;
    post_user([this, e, reason = std::string(reason)] {
      if (event_handler_) event_handler_(e, reason);
    });
  }

  void complete_later(subscribed_handler&& done, std::error_code ec) {
    if (!done) return;
    post_user([done = std::move(done), ec] { done(ec); });
  }
  void complete_later(subscribed_handler&& done, redis_errc e) {
    complete_later(std::move(done), make_error_code(e));
  }

  // User code runs from the strand's queue, never inside hiredis or inside the call.
  template <class F>
  void post_user(F&& f) {
    auto self = weak_from_this().lock();
    if (!self || detached_) return;
    asio::post(strand_, [self, f = std::forward<F>(f)]() mutable {
      if (!static_cast<impl*>(self.get())->detached_) f();
    });
  }

  std::unordered_map<std::string, channel> channels_; // what is wished, with the counts
  std::unordered_map<std::string, steady::time_point>
      awaiting_;           // SUBSCRIBEd on this link, unconfirmed
  bool resyncing_ = false; // on_link_open's batch not all confirmed yet
  bool ever_up_ = false;
  asio::steady_timer confirm_timer_;
  bool timer_armed_ = false;
};

redis_subscriber::redis_subscriber(const asio::any_io_executor& executor, redis_url url,
                                   redis_options options)
    : impl_(std::make_shared<impl>(executor, std::move(url), options)) {}

redis_subscriber::~redis_subscriber() {
  impl_->detached_ = true;
  asio::dispatch(impl_->strand(), [self = impl_] { self->close(false); });
}

void redis_subscriber::on_message(message_handler h) { impl_->message_handler_ = std::move(h); }
void redis_subscriber::on_event(event_handler h) { impl_->event_handler_ = std::move(h); }

void redis_subscriber::start() {
  asio::dispatch(impl_->strand(), [self = impl_] { self->start(); });
}

void redis_subscriber::close() {
  asio::dispatch(impl_->strand(), [self = impl_] { self->close(true); });
}

bool redis_subscriber::is_up() const noexcept { return impl_->up_; }

void redis_subscriber::subscribe(std::string channel, subscribed_handler done) {
  asio::dispatch(impl_->strand(),
                 [self = impl_, channel = std::move(channel), done = std::move(done)]() mutable {
                   self->subscribe(std::move(channel), std::move(done));
                 });
}

void redis_subscriber::unsubscribe(std::string channel) {
  asio::dispatch(impl_->strand(),
                 [self = impl_, channel = std::move(channel)] { self->unsubscribe(channel); });
}

asio::strand<asio::any_io_executor> redis_subscriber::executor() const { return impl_->strand(); }

} // namespace troupe::cluster

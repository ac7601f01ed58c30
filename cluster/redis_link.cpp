#include "cluster/redis_link.hpp"

#include <algorithm>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster/hiredis_asio.hpp"

namespace troupe::cluster::detail {

namespace asio = boost::asio;

namespace {
// hiredis 0.14 only has a fixed 15 s keepalive (redisEnableKeepAlive): a dead peer is noticed
// after about `seconds` of silence plus three probes `seconds / 3` apart.
void keepalive(int fd, int seconds) {
  int on = 1, idle = seconds, interval = std::max(1, seconds / 3), count = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}
} // namespace

redis_link::redis_link(const asio::any_io_executor& executor, redis_url url, redis_options options,
                       bool select_db)
    : strand_(asio::make_strand(executor)), url_(std::move(url)), options_(options),
      select_db_(select_db), resolver_(strand_), connect_timer_(strand_), reconnect_timer_(strand_),
      random_(std::random_device{}()) {}

redis_link::~redis_link() {
  // Normally stop_link() already ran; never leave hiredis pointing at a dead object.
  if (ac_) {
    redisAsyncContext* ac = std::exchange(ac_, nullptr);
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
}

void redis_link::start_link() {
  stopped_ = false;
  connect();
}

void redis_link::stop_link() {
  stopped_ = true;
  active_ = open_ = ready_ = false;
  resolver_.cancel();
  connect_timer_.cancel();
  reconnect_timer_.cancel();
  if (redisAsyncContext* ac = std::exchange(ac_, nullptr)) redisAsyncFree(ac);
}

void redis_link::break_link(std::string reason) {
  if (stopped_ || !active_) return; // nothing to break: already waiting to reconnect
  resolver_.cancel();
  // Set ac_ to null first: the disconnect callback that redisAsyncFree calls then knows the
  // loss is already being handled here.
  if (redisAsyncContext* ac = std::exchange(ac_, nullptr)) redisAsyncFree(ac);
  lost(std::move(reason));
}

void redis_link::link_ready() {
  ready_ = true;
  connect_timer_.cancel();
  failures_ = 0;
  reported_down_ = false;
}

void redis_link::connect() {
  if (stopped_) return;
  const std::uint64_t attempt = ++attempt_;
  active_ = true;
  open_ = ready_ = false;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait(
      [self = shared_from_this(), attempt](const boost::system::error_code& ec) {
        // A cancelled timer's handler may already be queued: ready_ says whether it still matters.
        if (!ec && self->attempt_ == attempt && !self->ready_)
          self->break_link("no connection to Redis within the connect timeout");
      });
  // Resolve with Asio: hiredis would call a blocking getaddrinfo on this thread.
  resolver_.async_resolve(
      url_.host, std::to_string(url_.port),
      [self = shared_from_this(), attempt](const boost::system::error_code& ec,
                                           asio::ip::tcp::resolver::results_type r) {
        // Already queued when break_link ran? Then this attempt is over.
        if (self->attempt_ == attempt && self->active_ && !self->ac_) self->resolved(ec, r);
      });
}

void redis_link::resolved(const boost::system::error_code& ec,
                          const asio::ip::tcp::resolver::results_type& results) {
  if (ec == asio::error::operation_aborted) return; // break_link or stop_link already acted
  if (ec || results.empty()) {
    lost("cannot resolve " + url_.host + ": " + (ec ? ec.message() : "no address"));
    return;
  }
  // IPv4 first (a "localhost" Redis usually binds 127.0.0.1 only); after a failure try the next
  // address, so a name with several addresses is not stuck on a dead one.
  std::vector<asio::ip::address> addresses;
  for (const auto& entry : results)
    addresses.push_back(entry.endpoint().address());
  std::stable_partition(addresses.begin(), addresses.end(),
                        [](const auto& a) { return a.is_v4(); });
  const std::string ip = addresses[failures_ % addresses.size()].to_string();

  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), url_.port);
  if (!ac) {
    lost("out of memory");
    return;
  }
  if (ac->err) {
    std::string reason = ac->errstr ? ac->errstr : "connect failed";
    redisAsyncFree(ac);
    lost(std::move(reason));
    return;
  }
  if (hiredis_asio_attach(ac, strand_) != REDIS_OK) {
    redisAsyncFree(ac);
    lost("cannot watch the Redis socket");
    return;
  }
  ac->data = this;
  ac_ = ac;
  redisAsyncSetDisconnectCallback(ac, &redis_link::disconnect_callback);
  redisAsyncSetConnectCallback(ac, &redis_link::connect_callback); // asks for the first write
}

void redis_link::connect_callback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_link*>(ac->data);
  if (!self || self->ac_ != ac) return;
  if (status != REDIS_OK) {
    // hiredis frees the context when this returns; it never was connected, so no
    // disconnect callback follows.
    self->ac_ = nullptr;
    self->lost(std::string("cannot connect to Redis: ") + ac->c.errstr);
    return;
  }
  if (self->options_.keepalive_seconds > 0) keepalive(ac->c.fd, self->options_.keepalive_seconds);
  self->handshake();
}

void redis_link::handshake() {
  handshake_replies_ = 0;
  if (!url_.password.empty()) {
    if (url_.username.empty()) {
      const char* argv[] = {"AUTH", url_.password.data()};
      const size_t len[] = {4, url_.password.size()};
      redisAsyncCommandArgv(ac_, &handshake_callback, this, 2, argv, len);
    } else {
      const char* argv[] = {"AUTH", url_.username.data(), url_.password.data()};
      const size_t len[] = {4, url_.username.size(), url_.password.size()};
      redisAsyncCommandArgv(ac_, &handshake_callback, this, 3, argv, len);
    }
    ++handshake_replies_;
  }
  if (select_db_ && url_.db != 0) {
    const std::string db = std::to_string(url_.db);
    const char* argv[] = {"SELECT", db.data()};
    const size_t len[] = {6, db.size()};
    redisAsyncCommandArgv(ac_, &handshake_callback, this, 2, argv, len);
    ++handshake_replies_;
  }
  // Always a PING: a frozen Redis's kernel still accepts connections, and "up" must mean
  // that Redis answers.
  const char* argv[] = {"PING"};
  const size_t len[] = {4};
  redisAsyncCommandArgv(ac_, &handshake_callback, this, 1, argv, len);
  ++handshake_replies_;
}

void redis_link::handshake_callback(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<redis_link*>(privdata);
  if (!reply || self->ac_ != ac) return; // a NULL reply: the context is going; lost() follows
  auto* r = static_cast<redisReply*>(reply);
  if (r->type == REDIS_REPLY_ERROR) {
    // Not from inside hiredis's callback: free the context from the strand.
    std::string reason = "Redis refused the handshake: " + std::string(r->str, r->len);
    asio::post(self->strand_, [s = self->shared_from_this(), ac, reason = std::move(reason)] {
      if (s->ac_ == ac) s->break_link(reason);
    });
    self->handshake_replies_ = -1; // never open this context
    return;
  }
  if (--self->handshake_replies_ == 0) {
    self->open_ = true;
    self->on_link_open();
  }
}

void redis_link::disconnect_callback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_link*>(ac->data);
  if (!self || self->ac_ != ac) return; // freed by break_link or stop_link, already handled
  self->ac_ = nullptr;
  self->lost(ac->c.err ? std::string("lost the link to Redis: ") + ac->c.errstr
                       : std::string("Redis closed the connection"));
}

void redis_link::lost(std::string reason) {
  active_ = open_ = ready_ = false;
  connect_timer_.cancel();
  const bool report = !reported_down_;
  reported_down_ = true;
  on_link_lost(reason, report);
  schedule_reconnect();
}

void redis_link::schedule_reconnect() {
  if (stopped_) return;
  using std::chrono::milliseconds;
  const unsigned exponent = std::min(failures_++, 16u);
  const auto cap = std::min<milliseconds::rep>(options_.backoff_initial.count() << exponent,
                                               options_.backoff_max.count());
  std::uniform_int_distribution<milliseconds::rep> jitter(cap / 2, cap);
  const milliseconds delay = std::max(options_.backoff_initial, milliseconds(jitter(random_)));
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->connect();
  });
}

} // namespace troupe::cluster::detail

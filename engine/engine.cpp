#include "engine/engine.hpp"

#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>

#include "actors/cluster_presence.hpp"
#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/storage.hpp"
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"
#include "cluster/redis_url.hpp"
#include "core/history_log.hpp"
#include "transport/backend_client.hpp"
#include "transport/webhook_sender.hpp"
#include "transport/listener.hpp"
#include "transport/liveness_sweep.hpp"
#include "transport/tls_context.hpp"
#include "transport/send_ring.hpp"
#include "transport/write_batch.hpp"
#include "transport/ws_session.hpp"

namespace troupe::engine {

namespace net = boost::asio;

namespace {

/// The bundled demo: `web/` next to the executable or one level up (the build tree).
std::string default_web_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web";
  for (auto dir : {exe.parent_path() / "web", exe.parent_path().parent_path() / "web",
                   exe.parent_path().parent_path() / "share" / "troupe" / "web"})
    if (std::filesystem::exists(dir / "index.html", ec)) return dir.string();
  return "web";
}

/// Each connection is a socket: let the engine use as many as the system allows.
void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

/// CPUs a cgroup v2 quota (`cpu.max`: "quota period", or "max") lets this process use,
/// rounded up; 0 when there is no quota.
unsigned cgroup_cpu_quota() {
  std::ifstream file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(file >> quota >> period) || quota == "max" || period <= 0) return 0;
  try {
    return static_cast<unsigned>(std::ceil(std::stod(quota) / period));
  } catch (const std::exception&) {
    return 0;
  }
}

/// One I/O thread per core this process may run on: taskset narrows the set, and a cgroup
/// quota the time (more threads than the quota allows only take turns and hand off).
unsigned io_threads(unsigned requested) {
  if (requested > 0) return requested;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) cores = std::max(1, CPU_COUNT(&cpus));
  if (const unsigned quota = cgroup_cpu_quota(); quota > 0) cores = std::min(cores, quota);
  return cores;
}

/// "a, b,c" -> {"a", "b", "c"}: the items of a comma-separated option, trimmed.
std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    auto item = list.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(std::move(item));
    start = end + 1;
  }
  return items;
}

} // namespace

engine::engine(const options& options)
    : options_(options), io_(static_cast<int>(io_threads(options.threads))),
      work_(net::make_work_guard(io_)), signals_(io_, SIGINT, SIGTERM),
      caf_config_(std::make_unique<caf::actor_system_config>()) {
  raise_file_limit();
  if (!options.redis.empty()) {
    // Redis holds the logs, documents and presence: no embedded store.
    actors::cluster_settings cluster;
    cluster.url = cluster::parse_redis_url(options.redis);
    cluster_ = std::make_unique<actors::cluster_hub>(io_.get_executor(), std::move(cluster));
    store_ = std::make_unique<store::memory_store>();
    std::cout << "troupe: cluster: Redis at " << cluster::parse_redis_url(options.redis).redacted()
              << ", node " << cluster_->incarnation() << " (the embedded store is not used)"
              << std::endl;
  } else if (options.store == "memory") {
    store_ = std::make_unique<store::memory_store>();
    std::cout << "troupe: store: memory (rooms and documents are lost on restart)" << std::endl;
  } else {
    // Opened and checked before anything starts: a damaged database stops the engine with
    // the reason rather than being served as empty rooms.
    auto durable = std::make_unique<store::sqlite_store>(
        store::sqlite_settings{options.data, options.sync == "full"});
    std::cout << "troupe: store: " << durable->path() << " (SQLite, synchronous=" << options.sync
              << ")" << std::endl;
    store_ = std::move(durable);
  }
  if (!options.tls_cert.empty()) {
    // Loaded before anything starts: a bad file stops the engine with the reason.
    context_.tls = transport::make_tls_context(options.tls_cert, options.tls_key);
    std::cout << "troupe: TLS on: every connection must be TLS (wss://, https://)" << std::endl;
  }
  // CAF's own threads only run timers and the rare scheduled actor: the hot actors run on
  // the Asio threads. `sharing` sleeps when idle where work stealing would poll.
  caf_config_->set("scheduler.policy", caf::atom("sharing"));
  caf_config_->set("scheduler.max-threads", 1);
  caf_ = std::make_unique<caf::actor_system>(*caf_config_);

  auto& settings = context_.settings;
  settings.max_frame = options.max_frame;
  settings.queue_limit = options.queue_limit;
  settings.ping = std::chrono::seconds(options.ping);
  settings.web_dir = options.web.empty() ? default_web_dir() : options.web;
  settings.handshake_timeout = std::chrono::seconds(options.handshake_timeout);
  settings.connect_timeout = settings.handshake_timeout; // the upgrade, then `connect`
  settings.max_connections = options.max_connections;
  settings.max_connections_per_ip = options.max_connections_per_ip;
  settings.origins = split_list(options.origins);
  settings.api_key = options.api_key;

  actors::directory_settings directory;
  directory.room.history = options.history;
  directory.room.history_age = std::chrono::seconds(options.history_age);
  directory.document.log = options.doc_log;
  directory.document.snapshot_every = options.doc_snapshot;
  directory.room_idle = std::chrono::seconds(options.room_idle);
  directory.presence.grace = std::chrono::milliseconds(static_cast<long>(options.grace * 1000));

  auto& services = context_.connection;
  services.system = caf_.get();
  services.metrics = &metrics_;
  if (store_->durable()) {
    actors::storage_settings storage;
    storage.history_age = std::chrono::seconds(options.history_age);
    metrics_.commits.set_bound(
        std::chrono::milliseconds(static_cast<long>(options.store_stall * 1000)));
    storage_ =
        actors::spawn_storage(*caf_, net::make_strand(storage_io_), *store_, storage, metrics_);
    // Not ready while the disk is stalled: writes are refused then (docs/storage.md).
    context_.unavailable_reason = [this] {
      auto& commits = metrics_.commits;
      if (!commits.stalled()) return std::string();
      return "the store is stalled: a commit has run for " +
             core::commit_watch::seconds_text(
                 std::chrono::duration_cast<std::chrono::microseconds>(commits.age()));
    };
  }
  if (!options.backend.empty()) {
    backend_ = std::make_shared<transport::backend_client>(
        io_, transport::backend_client_options{options.backend, options.backend_secret,
                                               std::chrono::seconds(options.backend_timeout)});
    services.app_backend = backend_.get();
    directory.app_backend = backend_.get(); // the rooms emit webhook events
    // Webhooks: the rooms' events go to the queue, which POSTs them through the client.
    core::webhook_queue_settings queue;
    queue.capacity = options.webhook_queue;
    webhooks_ = std::make_shared<transport::webhook_sender>(
        io_.get_executor(), queue,
        [client = std::weak_ptr<transport::backend_client>(backend_)](
            std::string path, std::string body, transport::webhook_sender::reply_handler done) {
          if (auto c = client.lock())
            return c->post(std::move(path), std::move(body), std::move(done));
          done(0, {}, std::make_error_code(std::errc::operation_canceled));
        },
        metrics_);
    backend_->set_event_sink(
        [sender = webhooks_](actors::backend_event event) { sender->emit(std::move(event)); });
    std::cout << "troupe: backend: " << options.backend
              << (options.backend_secret.empty() ? " (calls unsigned)" : " (calls signed)")
              << std::endl;
  }
  directory.cluster = cluster_.get();
  services.directory = actors::spawn_directory(*caf_, io_, directory, *store_, storage_, metrics_);
  if (cluster_) {
    cluster_control_ = std::make_unique<transport::cluster_control>(*cluster_, context_.sessions,
                                                                    io_.get_executor());
    context_.close_user = cluster_control_->closer();
    context_.unavailable_reason = [hub = cluster_.get()] { return hub->down_reason(); };
    cluster_->on_dead_node(
        [hub = cluster_.get(), app = backend_.get()](const std::string& incarnation) {
          actors::sweep_dead_node(*hub, incarnation, {}, app);
        });
  }
  services.limits.max_data = options.max_data;
  services.ping_seconds = options.ping;
  services.node_id = core::new_epoch().substr(0, 6);
  services.next_client = &next_client_;
  services.on_connected = [this](actors::peer& peer, const std::string& user) {
    context_.sessions.identify(&peer, user);
  };
  services.secret = options.secret;
  services.rate = options.rate;
  services.max_rooms = options.max_rooms;
  context_.metrics = &metrics_;
}

engine::~engine() {
  if (!threads_.empty()) shutdown();
}

std::uint16_t engine::start() {
  net::ip::tcp::endpoint endpoint(net::ip::make_address(options_.host), options_.port);
  listener_ = std::make_shared<transport::listener>(io_, endpoint, context_);
  listener_->run();
  liveness_ = std::make_unique<transport::liveness_sweep>(io_, context_);
  liveness_->start();
  if (cluster_) cluster_->start();
  trimmer_.start();
  const unsigned count = io_threads(options_.threads);
  const bool io_uring = options_.io_uring == "on" && transport::send_ring::open(2) != nullptr;
  std::cout << "troupe: " << count << " I/O thread" << (count == 1 ? "" : "s")
            << ", socket writes: " << (io_uring ? "io_uring, one submission per turn" : "sendmsg")
            << std::endl;
  for (unsigned i = 0; i < count; ++i)
    threads_.emplace_back([this] {
      transport::write_batch::attach_this_thread(io_, options_.io_uring == "on");
      io_.run();
      transport::write_batch::detach_this_thread();
    });
  storage_thread_ = std::thread([this] {
    auto work = net::make_work_guard(storage_io_);
    storage_io_.run();
  });
  return listener_->local_endpoint().port();
}

void engine::run_until_signal() {
  std::promise<int> signalled;
  signals_.async_wait([&](const boost::system::error_code& ec, int number) {
    if (!ec) signalled.set_value(number);
  });
  const int number = signalled.get_future().get();
  std::cout << "troupe: signal " << number << ", shutting down" << std::endl;
  shutdown();
}

void engine::shutdown() {
  using namespace std::chrono_literals;
  auto wait_until = [](auto done, std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
  };
  listener_->stop();
  context_.sessions.for_each([](const std::shared_ptr<transport::ws_session>& session) {
    session->close_from_anywhere(4503, "server shutting down", true);
  });
  // Clients answer our close frame; the close timeout bounds those that don't.
  wait_until([&] { return context_.sessions.size() == 0; }, context_.settings.close_timeout + 1s);
  // Rooms wait for their last commits before they end.
  caf::anon_send(context_.connection.directory, actors::stop_atom::value);
  wait_until([&] { return metrics_.rooms.load() == 0; }, 5s);
  if (cluster_) {
    // The last word of a clean stop: whatever presence entries this node still has in Redis
    // leave now, and it leaves tr:nodes (a node gone without it is swept by the others).
    cluster_->close();
    auto swept = std::make_shared<std::promise<void>>();
    actors::sweep_dead_node(
        *cluster_, cluster_->incarnation(), [swept] { swept->set_value(); }, backend_.get());
    swept->get_future().wait_for(2s);
  }
  if (webhooks_) webhooks_->stop(); // what is still queued is lost with the process
  trimmer_.stop();
  if (liveness_) liveness_->stop();
  work_.reset();
  io_.stop();
  for (auto& thread : threads_)
    thread.join();
  threads_.clear();
  if (storage_) caf::anon_send(storage_, actors::stop_atom::value);
  storage_io_.stop(); // after the rooms: nothing is left to commit
  if (storage_thread_.joinable()) storage_thread_.join();
  caf_.reset(); // joins CAF's threads before the io_context they post to goes away
}

} // namespace troupe::engine

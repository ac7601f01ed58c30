#include "engine/options.hpp"

#include "cluster/redis_url.hpp"
#include "transport/backend_client.hpp"

#include <boost/program_options.hpp>

#include <cctype>
#include <ostream>
#include <stdexcept>

namespace troupe::engine {

namespace po = boost::program_options;

std::optional<options> parse_options(int argc, const char* const* argv, std::ostream& help_out) {
  options o;
  po::options_description described(
      "troupe options (each also TROUPE_<NAME>, e.g. TROUPE_MAX_DATA)");
  described.add_options()("help", "print this help and exit")(
      "host", po::value(&o.host)->default_value(o.host), "address to listen on")(
      "port", po::value(&o.port)->default_value(o.port), "port; 0 picks a free one and logs it")(
      "ping", po::value(&o.ping)->default_value(o.ping),
      "seconds between keep-alive pings; 2x silence closes with 4408")(
      "grace", po::value(&o.grace)->default_value(o.grace),
      "seconds a connection that vanished stays listed in presence")(
      "history", po::value(&o.history)->default_value(o.history), "messages kept per room")(
      "doc-log", po::value(&o.doc_log)->default_value(o.doc_log),
      "operations kept per document (an op against an older revision gets conflict)")(
      "max-frame", po::value(&o.max_frame)->default_value(o.max_frame),
      "largest incoming WebSocket message in bytes (larger: close 1009)")(
      "max-data", po::value(&o.max_data)->default_value(o.max_data),
      "largest encoded `data` of a message in bytes (larger: too_large)")(
      "queue-limit", po::value(&o.queue_limit)->default_value(o.queue_limit),
      "bytes queued for one connection before it is cut as a slow consumer (4500)")(
      "room-idle", po::value(&o.room_idle)->default_value(o.room_idle),
      "seconds an unused room stays in memory before it is handed to the store")(
      "threads", po::value(&o.threads)->default_value(o.threads),
      "I/O threads; 0 means one per core this process may use (affinity, cgroup quota)")(
      "io-uring", po::value(&o.io_uring)->default_value(o.io_uring),
      "on: each I/O thread submits its turn's socket writes to the kernel as one io_uring "
      "submission; off (or where the kernel refuses io_uring): one sendmsg per socket")(
      "web", po::value(&o.web), "directory of static files served at / (default: the demo)")(
      "store", po::value(&o.store)->default_value(o.store),
      "sqlite: rooms and documents kept on disk in --data; memory: lost on restart")(
      "data", po::value(&o.data)->default_value(o.data),
      "directory of the SQLite store (created if missing)")(
      "history-age", po::value(&o.history_age)->default_value(o.history_age),
      "seconds a message is kept at most (besides --history); 0 means no age limit")(
      "doc-snapshot", po::value(&o.doc_snapshot)->default_value(o.doc_snapshot),
      "operations between two stored snapshots of a document's text")(
      "sync", po::value(&o.sync)->default_value(o.sync),
      "full: a commit survives power loss; normal: it survives a crash of the engine")(
      "store-stall", po::value(&o.store_stall)->default_value(o.store_stall),
      "seconds a commit may run before the store counts as stalled: logged, counted, and new "
      "writes get unavailable until it ends")(
      "secret", po::value(&o.secret),
      "HS256 key that signs connection tokens; without it the engine runs open")(
      "api-key", po::value(&o.api_key),
      "key of the HTTP API (Authorization: apikey KEY); without it the API is off")(
      "rate", po::value(&o.rate)->default_value(o.rate),
      "requests per second per connection (burst: twice that); 0 turns the budget off")(
      "max-rooms", po::value(&o.max_rooms)->default_value(o.max_rooms),
      "rooms one connection may hold (subscribed or open) at once")(
      "max-connections", po::value(&o.max_connections)->default_value(o.max_connections),
      "WebSocket connections in total; 0 means no limit")(
      "max-connections-per-ip",
      po::value(&o.max_connections_per_ip)->default_value(o.max_connections_per_ip),
      "WebSocket connections from one IP address; 0 means no limit")(
      "handshake-timeout", po::value(&o.handshake_timeout)->default_value(o.handshake_timeout),
      "seconds a new connection has for its HTTP upgrade, and then for `connect`")(
      "origins", po::value(&o.origins),
      "comma-separated Origin values allowed to open a WebSocket (default: any)")(
      "tls-cert", po::value(&o.tls_cert), "PEM certificate chain: serve wss:// and https://")(
      "tls-key", po::value(&o.tls_key), "PEM private key of --tls-cert")(
      "redis", po::value(&o.redis),
      "redis://[:password@]host:port[/db]: join the cluster of nodes sharing this Redis "
      "(the embedded store is then not used)")(
      "backend", po::value(&o.backend),
      "http(s):// base URL of the application's backend: RPC to URL/rpc, webhooks to URL/events")(
      "backend-secret", po::value(&o.backend_secret),
      "key of the X-Troupe-Signature HMAC on every backend call; without it calls are unsigned")(
      "backend-timeout", po::value(&o.backend_timeout)->default_value(o.backend_timeout),
      "seconds a backend call may take before it counts as failed")(
      "webhook-queue", po::value(&o.webhook_queue)->default_value(o.webhook_queue),
      "webhook events queued for the backend at most; what arrives beyond is dropped and counted");

  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, described), values);
    // The command line wins: store() keeps values already stored.
    po::store(po::parse_environment(
                  described,
                  [&](const std::string& variable) -> std::string {
                    const std::string prefix = "TROUPE_";
                    if (variable.rfind(prefix, 0) != 0) return {};
                    std::string name = variable.substr(prefix.size());
                    for (auto& c : name)
                      c = c == '_' ? '-'
                                   : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    return described.find_nothrow(name, false) ? name : std::string();
                  }),
              values);
    po::notify(values);
  } catch (const po::error& error) {
    throw std::runtime_error(error.what());
  }
  if (values.count("help")) {
    help_out << described << '\n';
    return std::nullopt;
  }
  if (o.ping == 0) throw std::runtime_error("--ping must be at least 1 second");
  if (o.grace < 0) throw std::runtime_error("--grace must not be negative");
  if (o.rate < 0) throw std::runtime_error("--rate must not be negative");
  if (o.max_rooms == 0) throw std::runtime_error("--max-rooms must be at least 1");
  if (o.handshake_timeout == 0)
    throw std::runtime_error("--handshake-timeout must be at least 1 second");
  if (o.tls_cert.empty() != o.tls_key.empty())
    throw std::runtime_error("--tls-cert and --tls-key go together");
  if (o.doc_log == 0) throw std::runtime_error("--doc-log must be at least 1");
  if (o.store != "sqlite" && o.store != "memory")
    throw std::runtime_error("--store must be sqlite or memory");
  if (o.io_uring != "on" && o.io_uring != "off")
    throw std::runtime_error("--io-uring must be on or off");
  if (o.sync != "full" && o.sync != "normal")
    throw std::runtime_error("--sync must be full or normal");
  if (!(o.store_stall >= 0.01 && o.store_stall <= 3600))
    throw std::runtime_error("--store-stall must be between 0.01 and 3600 seconds");
  if (o.doc_snapshot == 0) throw std::runtime_error("--doc-snapshot must be at least 1");
  if (o.max_frame < 1024) throw std::runtime_error("--max-frame must be at least 1024 bytes");
  if (!o.redis.empty()) {
    try {
      cluster::parse_redis_url(o.redis);
    } catch (const std::invalid_argument& error) {
      throw std::runtime_error(std::string("--redis: ") + error.what());
    }
  }
  if (!o.backend.empty()) {
    try {
      transport::parse_backend_url(o.backend);
    } catch (const std::invalid_argument& error) {
      throw std::runtime_error(std::string("--backend: ") + error.what());
    }
  }
  if (o.webhook_queue == 0) throw std::runtime_error("--webhook-queue must be at least 1");
  if (o.backend_timeout == 0)
    throw std::runtime_error("--backend-timeout must be at least 1 second");
  return o;
}

} // namespace troupe::engine

#include "engine/options.hpp"

#include <boost/program_options.hpp>

#include <cctype>
#include <ostream>
#include <stdexcept>

namespace troupe::engine {

namespace po = boost::program_options;

std::optional<options> parse_options(int argc, const char* const* argv, std::ostream& help_out) {
  options o;
  po::options_description described("troupe options (each also TROUPE_<NAME>, e.g. TROUPE_MAX_DATA)");
  described.add_options()
      ("help", "print this help and exit")
      ("host", po::value(&o.host)->default_value(o.host), "address to listen on")
      ("port", po::value(&o.port)->default_value(o.port), "port; 0 picks a free one and logs it")
      ("ping", po::value(&o.ping)->default_value(o.ping),
       "seconds between keep-alive pings; 2x silence closes with 4408")
      ("grace", po::value(&o.grace)->default_value(o.grace),
       "seconds a connection that vanished stays listed in presence")
      ("history", po::value(&o.history)->default_value(o.history), "messages kept per room")
      ("doc-log", po::value(&o.doc_log)->default_value(o.doc_log),
       "operations kept per document (an op against an older revision gets conflict)")
      ("max-frame", po::value(&o.max_frame)->default_value(o.max_frame),
       "largest incoming WebSocket message in bytes (larger: close 1009)")
      ("max-data", po::value(&o.max_data)->default_value(o.max_data),
       "largest encoded `data` of a message in bytes (larger: too_large)")
      ("queue-limit", po::value(&o.queue_limit)->default_value(o.queue_limit),
       "bytes queued for one connection before it is cut as a slow consumer (4500)")
      ("room-idle", po::value(&o.room_idle)->default_value(o.room_idle),
       "seconds an unused room stays in memory before it is handed to the store")
      ("threads", po::value(&o.threads)->default_value(o.threads),
       "I/O threads; 0 means one per core")
      ("web", po::value(&o.web), "directory of static files served at / (default: the demo)");

  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, described), values);
    // The command line wins: store() keeps values already stored.
    po::store(po::parse_environment(described,
                                    [&](const std::string& variable) -> std::string {
                                      const std::string prefix = "TROUPE_";
                                      if (variable.rfind(prefix, 0) != 0)
                                        return {};
                                      std::string name = variable.substr(prefix.size());
                                      for (auto& c : name)
                                        c = c == '_' ? '-' : static_cast<char>(std::tolower(
                                                                 static_cast<unsigned char>(c)));
                                      return described.find_nothrow(name, false) ? name
                                                                                 : std::string();
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
  if (o.ping == 0)
    throw std::runtime_error("--ping must be at least 1 second");
  if (o.grace < 0)
    throw std::runtime_error("--grace must not be negative");
  if (o.doc_log == 0)
    throw std::runtime_error("--doc-log must be at least 1");
  if (o.max_frame < 1024)
    throw std::runtime_error("--max-frame must be at least 1024 bytes");
  return o;
}

} // namespace troupe::engine

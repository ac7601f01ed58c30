#include "tests/support/editing_trace.hpp"

#include <zlib.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace troupe::traces {

namespace {

std::string gunzip_file(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw std::runtime_error("cannot open editing trace " + path);
  std::string bytes;
  char buffer[1 << 16];
  int read = 0;
  while ((read = gzread(file.get(), buffer, sizeof buffer)) > 0)
    bytes.append(buffer, static_cast<std::size_t>(read));
  if (read < 0) throw std::runtime_error("cannot decompress editing trace " + path);
  return bytes;
}

} // namespace

editing_trace load_trace(const std::string& path) {
  editing_trace trace;
  try {
    const auto json = nlohmann::json::parse(gunzip_file(path));
    trace.start_content = json.at("startContent").get<std::string>();
    trace.end_content = json.at("endContent").get<std::string>();
    for (const auto& txn : json.at("txns"))
      for (const auto& p : txn.at("patches"))
        trace.patches.push_back(
            {p.at(0).get<std::size_t>(), p.at(1).get<std::size_t>(), p.at(2).get<std::string>()});
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error("malformed editing trace " + path + ": " + error.what());
  }
  return trace;
}

std::string trace_path(const std::string& name) {
  const char* dir = std::getenv("TROUPE_TRACE_DIR");
  return std::string(dir && *dir ? dir : TROUPE_TRACE_DIR) + "/" + name + ".json.gz";
}

} // namespace troupe::traces

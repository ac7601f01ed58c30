// What document.cpp, document_cursors.cpp and documents.cpp share: the registry's shared
// part, a document's timers, the lock. Private to the library.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "clients/cpp/documents.hpp"

namespace troupe::client {

using lock_type = std::lock_guard<std::recursive_mutex>;

// The registry's shared part: the documents by room, for the push handlers and the state
// listener (which outlive nothing: they hold it weakly).
struct document::registry {
  explicit registry(documents::options o) : opts(o) {}

  std::shared_ptr<document> find(const std::string& room) {
    std::lock_guard<std::mutex> l(m);
    auto it = docs.find(room);
    return it == docs.end() ? nullptr : it->second.lock();
  }
  std::vector<std::shared_ptr<document>> all() {
    std::lock_guard<std::mutex> l(m);
    std::vector<std::shared_ptr<document>> out;
    for (auto& [room, w] : docs)
      if (auto d = w.lock()) out.push_back(std::move(d));
    return out;
  }

  const documents::options opts;
  std::mutex m;
  std::map<std::string, std::weak_ptr<document>> docs;
  std::string client_id; // this connection's, from the last `connected`
};

struct document::timers {
  explicit timers(const boost::asio::any_io_executor& ex) : retry(ex), cursor(ex) {}
  boost::asio::steady_timer retry;
  boost::asio::steady_timer cursor;
};

} // namespace troupe::client

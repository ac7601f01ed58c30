#pragma once
// The store that keeps everything in memory: state survives a room's eviction, not a
// restart (a restarted engine hands out new epochs).

#include <mutex>
#include <unordered_map>

#include "core/store.hpp"

namespace troupe::core {

class memory_store final : public store {
public:
  std::optional<history_log> take_log(std::string_view room) override;
  void keep_log(std::string_view room, history_log log) override;
  std::optional<document_state> take_document(std::string_view room) override;
  void keep_document(std::string_view room, document_state document) override;

private:
  std::mutex mutex_;
  std::unordered_map<std::string, history_log> logs_;
  std::unordered_map<std::string, document_state> documents_;
};

} // namespace troupe::core

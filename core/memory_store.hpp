#pragma once
// The store that keeps everything in memory: state survives a room's eviction, not a
// restart (a restarted engine hands out new epochs). Nothing waits for a commit.

#include <mutex>
#include <unordered_map>

#include "core/store.hpp"

namespace troupe::core {

class memory_store final : public store {
public:
  loaded<history_log> load_log(std::string_view room, std::size_t capacity) override;
  loaded<document_state> load_document(std::string_view room,
                                       std::size_t log_capacity) override;
  void keep_log(std::string_view room, history_log log) override;
  void keep_document(std::string_view room, document_state document) override;
  bool durable() const noexcept override { return false; }
  std::string commit(const std::vector<room_writes>&) override { return {}; }
  void expire_messages(std::uint64_t) override {}

private:
  std::mutex mutex_;
  std::unordered_map<std::string, history_log> logs_;
  std::unordered_map<std::string, document_state> documents_;
};

} // namespace troupe::core
